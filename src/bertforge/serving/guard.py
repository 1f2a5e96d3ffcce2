"""Connection-level defences of the HTTP server: slow clients, too many clients, huge headers.

uvicorn reads a request's line and headers for as long as the client cares to send them:
a connection that trickles a byte a second holds a file descriptor forever, and a few
hundred of them leave none for real clients. :func:`guarded_protocol` wraps uvicorn's
HTTP protocol class so that each connection

- gets ``header_timeout`` seconds to send a request's line and headers (408, then closed),
  counted again for each request on a kept-alive connection;
- counts against ``max_connections`` (kept below what the process's file-descriptor limit
  leaves, so the server never runs out of them): a connection beyond it closes the one that
  has waited longest for a request's headers, a slow client's, and only when every open
  connection is busy with a request is it refused with 503;
- is refused with 431 once its line and headers pass ``max_header_bytes``.

The body has its own deadline (``body_timeout``), held by the ASGI layer in ``app.py``.
Refusals are one-line JSON like every other answer, and :class:`QuietRepeats` keeps a
flood of them (or of any repeated warning) down to one log line per message every few
seconds.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass

from bertforge.errors import BertforgeError

log = logging.getLogger(__name__)

DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 30.0
DEFAULT_KEEP_ALIVE = 5.0
DEFAULT_MAX_CONNECTIONS = 1000
DEFAULT_MAX_HEADER_BYTES = 16 * 1024
# Descriptors kept free, beyond those open when the server starts, for files the model or
# the log open later.
RESERVED_DESCRIPTORS = 16
# A refused client is given this long to finish sending its request head before it is closed:
# answering before reading would make many clients see a reset instead of the 503. Past half
# of the reserved descriptors above the cap, refusals close at once.
REFUSAL_GRACE_SECONDS = 0.5
# A connection is closed to make room only once it has waited this long for its headers: a
# client that connected a moment ago is not slow, it has not been read yet.
EVICT_AFTER_SECONDS = 0.2


@dataclass(frozen=True)
class ConnectionLimits:
    """How long and how much a client may take, and how many may be connected at once.

    >>> ConnectionLimits(header_timeout=5).header_timeout
    5.0
    >>> ConnectionLimits(max_connections=0)
    Traceback (most recent call last):
    ...
    bertforge.errors.BertforgeError: max_connections=0 is not a positive whole number; pass e.g. 1000 (--max-connections)
    """

    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    keep_alive: float = DEFAULT_KEEP_ALIVE
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES

    def __post_init__(self):
        for name in ("header_timeout", "body_timeout", "keep_alive"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise BertforgeError(f"{name}={value!r} is not a positive number of seconds; pass e.g. "
                                     f"{getattr(ConnectionLimits, name)} (--{name.replace('_', '-')})")
            object.__setattr__(self, name, float(value))
        for name in ("max_connections", "max_header_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BertforgeError(f"{name}={value!r} is not a positive whole number; pass e.g. "
                                     f"{getattr(ConnectionLimits, name)} (--{name.replace('_', '-')})")

    def connection_cap(self) -> int:
        """``max_connections``, lowered to what the process's file-descriptor limit leaves
        (each connection holds one) after those open now and :data:`RESERVED_DESCRIPTORS`.

        >>> ConnectionLimits(max_connections=5).connection_cap()
        5
        """
        try:
            import resource
        except ImportError:  # not on POSIX: no limit to read
            return self.max_connections
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return self.max_connections
        return max(1, min(self.max_connections, soft - _open_descriptors() - RESERVED_DESCRIPTORS))


def _open_descriptors() -> int:
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder))
        except OSError:
            continue
    return 64  # nowhere to count them: assume a loaded model's usual share


def refusal(status: int, reason: str, detail: str) -> bytes:
    """A whole HTTP/1.1 response, JSON ``{"detail": ...}``, that closes the connection.

    >>> refusal(503, "Service Unavailable", "busy").split(b"\\r\\n")[0]
    b'HTTP/1.1 503 Service Unavailable'
    """
    body = json.dumps({"detail": detail}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"connection: close\r\n")
    if status == 503:
        head += "retry-after: 1\r\n"
    return (head + "\r\n").encode() + body


def guarded_protocol(base: type, limits: ConnectionLimits) -> type:
    """A subclass of uvicorn's HTTP protocol class ``base`` (h11 or httptools) that holds ``limits``.

    It relies on what both of uvicorn's HTTP/1.1 protocols have: ``cycle`` (the request
    being answered, replaced when a new request's headers are complete), ``connections``,
    ``transport``, ``on_response_complete`` and ``send_400_response``.
    """
    cap = limits.connection_cap()
    # The connections waiting for a request's headers, oldest first (dicts keep their order):
    # the first to close when a new client needs the room.
    waiting: dict = {}

    class Guarded(base):
        _head_timer = None
        _head_cycle = None
        _head_bytes = 0
        _head_tail = b""
        _refused = False

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            if len(self.connections) > cap:
                oldest = next(iter(waiting), None)
                patience = min(EVICT_AFTER_SECONDS, limits.header_timeout / 2)
                if oldest is None or time.monotonic() - waiting[oldest] < patience:
                    # Every connection is busy with a request, or has only just come: this one waits.
                    self._refused = True
                    log.warning("answered 503 to a new connection: all %d connections this server keeps "
                                "(--max-connections) are busy", cap)
                    crowded = len(self.connections) > cap + RESERVED_DESCRIPTORS // 2
                    self._head_timer = self.loop.call_later(0 if crowded else REFUSAL_GRACE_SECONDS,
                                                            self._refuse_now)
                    return
                log.warning("closed the connection that had waited longest for a request's headers, to make "
                            "room: %d connections are open, the most this server keeps (--max-connections)", cap)
                oldest._give_up_on_head()
            self._await_head(self.cycle)

        def _await_head(self, cycle) -> None:
            """Start the clock on the next request's line and headers."""
            self._stop_clock()
            self._head_cycle, self._head_bytes, self._head_tail = cycle, 0, b""
            self._head_timer = self.loop.call_later(limits.header_timeout, self._head_timed_out)
            waiting[self] = time.monotonic()

        def _stop_clock(self) -> None:
            waiting.pop(self, None)
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def data_received(self, data: bytes) -> None:
            if self._refused:
                self._head_tail = (self._head_tail + data)[-4:]
                if b"\r\n\r\n" in self._head_tail or b"\r\n\r\n" in data:
                    self._refuse_now()
                return
            reading_head = self._head_timer is not None and self.cycle is self._head_cycle
            if reading_head:
                seen = self._head_tail + data
                end = seen.find(b"\r\n\r\n")
                size = self._head_bytes + (len(data) if end < 0 else end + 4 - len(self._head_tail))
                if size > limits.max_header_bytes:
                    self._stop_clock()
                    log.warning("refused a request whose line and headers pass %d bytes (--max-header-bytes)",
                                limits.max_header_bytes)
                    self._close_with(431, "Request Header Fields Too Large",
                                     f"the request line and headers are more than {limits.max_header_bytes:,} "
                                     "bytes, above this server's limit (--max-header-bytes); send smaller headers")
                    return
                self._head_bytes += len(data)
                self._head_tail = seen[-3:]
            super().data_received(data)
            if reading_head and self.cycle is not self._head_cycle:
                self._stop_clock()  # the headers are in: the body has its own deadline

        def on_response_complete(self) -> None:
            answered = self.cycle
            super().on_response_complete()
            # A pipelined request may already have begun inside the call above.
            if self.cycle is answered and not self.transport.is_closing():
                self._await_head(answered)

        def connection_lost(self, exc) -> None:
            self._stop_clock()
            super().connection_lost(exc)

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.cycle is not self._head_cycle or self.transport.is_closing():
                return
            if self._head_bytes:
                log.warning("closed a connection that took more than %g s to send a request's line and headers "
                            "(--header-timeout)", limits.header_timeout)
            self._give_up_on_head()

        def _give_up_on_head(self) -> None:
            self._stop_clock()
            if self._head_bytes:  # a client that began a request is told why it is cut off
                self._close_with(408, "Request Timeout",
                                 f"the request line and headers did not arrive within {limits.header_timeout:g} s, "
                                 "or the server needed the connection for another client; send the whole request "
                                 "at once (--header-timeout)")
            else:  # an idle connection is simply closed, as keep-alive timeouts do
                self.transport.close()

        def _refuse_now(self) -> None:
            self._stop_clock()
            if not self.transport.is_closing():
                self._close_with(503, "Service Unavailable",
                                 f"this server already has {cap:,} connections open, its most "
                                 "(--max-connections); send the request again in a moment")

        def _close_with(self, status: int, reason: str, detail: str) -> None:
            if not self.transport.is_closing():
                self.transport.write(refusal(status, reason, detail))
                self.transport.close()

        def send_400_response(self, msg: str) -> None:
            log.warning("refused a request that is not valid HTTP/1.1")
            self._close_with(400, "Bad Request", "the request is not valid HTTP/1.1 (its request line, a header "
                                                 "or its framing cannot be read); send a well-formed request")

    Guarded.__name__ = Guarded.__qualname__ = f"Guarded{base.__name__}"
    return Guarded


class QuietRepeats(logging.Filter):
    """Let the first record of each message through, then one every ``window`` seconds saying
    how many like it were held back: a flood of refusals makes a few lines, not thousands.

    >>> quiet = QuietRepeats(window=60)
    >>> records = [logging.LogRecord("x", logging.WARNING, "", 0, "refused %s", ("a",), None) for _ in range(3)]
    >>> [quiet.filter(record) for record in records]
    [True, False, False]
    """

    MOST_MESSAGES = 1000  # distinct messages remembered; beyond it the memory starts afresh

    def __init__(self, window: float = 10.0):
        super().__init__()
        self.window = window
        self._seen: dict[tuple, list] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "asyncio" and record.exc_info:
            # The loop's own reports (a failed accept) come as several lines and a traceback: one line.
            error = record.exc_info[1]
            record.msg = f"{str(record.getMessage()).splitlines()[0]}: {type(error).__name__}: {error}"
            record.args, record.exc_info, record.exc_text = (), None, None
        key = (record.name, record.levelno, str(record.msg))
        now = time.monotonic()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.window:
            seen[1] += 1
            return False
        if len(self._seen) >= self.MOST_MESSAGES:
            self._seen.clear()
        held = seen[1] if seen else 0
        self._seen[key] = [now, 0]
        if held:
            record.msg = f"{record.msg} ({held} more like this in the last {self.window:g} s)"
        return True


#: The loggers a hostile client can make speak: uvicorn's, asyncio's (a failed accept), and ours.
NOISY_LOGGERS = ("uvicorn.error", "asyncio", "bertforge.serving.guard", "bertforge.serving.app",
                 "bertforge.serving.batcher")


def quiet_repeats(window: float = 10.0) -> None:
    """Put one :class:`QuietRepeats` on each of :data:`NOISY_LOGGERS` (once)."""
    for name in NOISY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, QuietRepeats) for existing in logger.filters):
            logger.addFilter(QuietRepeats(window))


__all__ = ["ConnectionLimits", "QuietRepeats", "guarded_protocol", "quiet_repeats", "refusal",
           "DEFAULT_HEADER_TIMEOUT", "DEFAULT_BODY_TIMEOUT", "DEFAULT_KEEP_ALIVE", "DEFAULT_MAX_CONNECTIONS",
           "DEFAULT_MAX_HEADER_BYTES"]
