"""How much one request may ask of the server, and the error that refuses it."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Sequence

from bertforge.errors import BertforgeError

DEFAULT_MAX_TEXTS = 128
DEFAULT_MAX_TEXT_BYTES = 100_000
DEFAULT_MAX_BATCH = 64
DEFAULT_BATCH_WAIT_MS = 2.0
# Tokens one model run may hold: about 0.3 s of MiniLM on two CPU cores, so a request queued
# behind a long one waits for one such run, not for the whole long request.
DEFAULT_MAX_BATCH_TOKENS = 8192
# JSON may escape a character of 1-4 UTF-8 bytes as up to 12 bytes (\\ud83d\\ude00), so a body
# that stays inside the text limits can be larger than their product; 3x covers escaped non-ASCII.
JSON_ESCAPE_ALLOWANCE = 3
BODY_OVERHEAD_BYTES = 64 * 1024


class RequestError(BertforgeError):
    """A request the server refuses, with the HTTP status that says why (413, 422, 404...)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    """How much one request may ask: texts per request and UTF-8 bytes per text.

    >>> limits = Limits(max_texts=2, max_text_bytes=10)
    >>> limits.check(["short", "text"])
    >>> limits.check(["a", "b", "c"])
    Traceback (most recent call last):
    ...
    bertforge.serving.limits.RequestError: texts has 3 items, above this server's limit of 2 per request (--max-texts); split the request
    >>> limits.check(["ok", "far too long"])
    Traceback (most recent call last):
    ...
    bertforge.serving.limits.RequestError: texts[1] is 12 bytes of UTF-8, above this server's limit of 10 per text (--max-text-bytes); shorten it
    """

    max_texts: int = DEFAULT_MAX_TEXTS
    max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES
    #: Tokens one request may run through the model, windows included (None: one full window
    #: for each of ``max_texts`` texts); a request above it gets 413.
    max_request_tokens: int | None = None
    #: Tokens one model run may hold; a request above it runs in several.
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS

    def __post_init__(self):
        for name in ("max_texts", "max_text_bytes", "max_batch_tokens", "max_request_tokens"):
            value = getattr(self, name)
            if value is None and name == "max_request_tokens":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BertforgeError(f"{name}={value!r} is not a positive whole number; pass e.g. "
                                     f"{getattr(Limits, name)}")

    @property
    def max_body_bytes(self) -> int:
        """The largest request body read at all: the text limits, with room for JSON escapes."""
        return self.max_texts * self.max_text_bytes * JSON_ESCAPE_ALLOWANCE + BODY_OVERHEAD_BYTES

    def check(self, texts: Sequence[str], name: str = "texts") -> None:
        """Raise :class:`RequestError` (413 for sizes, 422 for content) unless every text may be served."""
        if len(texts) > self.max_texts:
            raise RequestError(413, f"{name} has {len(texts)} items, above this server's limit of "
                                    f"{self.max_texts} per request (--max-texts); split the request")
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise RequestError(422, f"{name}[{index}] is {type(text).__name__}, not a string; "
                                        "send a list of strings")
            try:
                size = len(text.encode("utf-8"))
            except UnicodeEncodeError:
                raise RequestError(422, f"{name}[{index}] holds an unpaired surrogate escape (\\ud800-\\udfff), "
                                        "which is not text; send valid Unicode") from None
            if size > self.max_text_bytes:
                raise RequestError(413, f"{name}[{index}] is {size:,} bytes of UTF-8, above this server's limit of "
                                        f"{self.max_text_bytes:,} per text (--max-text-bytes); shorten it")
            if not text.strip():
                raise RequestError(422, f"{name}[{index}] is empty or only whitespace; drop it or give it "
                                        "some text")
            if _invisible(text):
                raise RequestError(422, f"{name}[{index}] holds only control, zero-width or other invisible "
                                        "characters, which the tokenizer drops, leaving no text; drop it or give "
                                        "it some text")

    def request_tokens(self, max_length: int) -> int:
        """The token budget of one request for a model reading ``max_length`` tokens a window.

        >>> Limits(max_texts=4).request_tokens(128), Limits(max_request_tokens=1000).request_tokens(128)
        (512, 1000)
        """
        return self.max_request_tokens if self.max_request_tokens is not None else self.max_texts * max_length


def _invisible(text: str) -> bool:
    """Whether ``text`` holds only whitespace, control and format characters (categories Cc
    and Cf: zero-width spaces and joiners, byte-order and direction marks), which BERT's
    normalizer removes. Each distinct character is looked at once, so a long text costs one
    pass in C."""
    return all(char.isspace() or unicodedata.category(char) in ("Cc", "Cf") for char in set(text))


__all__ = ["Limits", "RequestError", "DEFAULT_MAX_TEXTS", "DEFAULT_MAX_TEXT_BYTES", "DEFAULT_MAX_BATCH",
           "DEFAULT_BATCH_WAIT_MS", "DEFAULT_MAX_BATCH_TOKENS"]
