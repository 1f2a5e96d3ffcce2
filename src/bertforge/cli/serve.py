"""Serve a model directory over HTTP: POST /predict (fine-tuned classifiers), POST /embed,
GET /health, and the OpenAPI description at /openapi.json (docs at /docs). Requests that
arrive together are batched into one model run. Needs the serve extra."""

from __future__ import annotations

import argparse

from bertforge.cli.options import COUNT, POSITIVE, Number, add_pooling
from bertforge.serving.guard import (DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_KEEP_ALIVE,
                                     DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_HEADER_BYTES)
from bertforge.serving.limits import (DEFAULT_BATCH_WAIT_MS, DEFAULT_MAX_BATCH, DEFAULT_MAX_BATCH_TOKENS,
                                      DEFAULT_MAX_TEXT_BYTES, DEFAULT_MAX_TEXTS)

NAME = "serve"
SUMMARY = "serve a model over HTTP (predict, embed, health)"
EPILOG = ("example: bertforge serve --model runs/trec --port 8000, then: curl -H 'Content-Type: "
          "application/json' -d '{\"texts\": [\"Who wrote The Raven ?\"]}' http://127.0.0.1:8000/predict")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The model, the address, the limits and batching of requests, and the limits of connections.

    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> args = parser.parse_args(["--model", "runs/trec", "--port", "0"])
    >>> args.host, args.port, args.max_texts, args.batch_wait_ms, args.header_timeout, args.max_connections
    ('127.0.0.1', 0, 128, 2.0, 10.0, 1000)
    """
    parser.add_argument("--model", required=True, help="model directory: a fine-tuned classifier, or any encoder")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on; anything but loopback lets other machines in")
    parser.add_argument("--port", type=Number(0, 65535, whole=True), default=8000, help="TCP port (0: any free port)")
    add_pooling(parser, help="pooling for /embed")
    parser.add_argument("--normalize", action="store_true",
                        help="unit-length embeddings unless a request says otherwise")
    parser.add_argument("--max-length", type=Number(low=3, whole=True), help="truncate texts to this many tokens (default: the "
                                                       "classifier's training length, else the model's positions)")
    parser.add_argument("--max-texts", type=COUNT, default=DEFAULT_MAX_TEXTS, help="texts per request (more: 413)")
    parser.add_argument("--max-text-bytes", type=COUNT, default=DEFAULT_MAX_TEXT_BYTES,
                        help="UTF-8 bytes per text (more: 413)")
    parser.add_argument("--max-request-tokens", type=COUNT,
                        help="tokens one request may run through the model, every window of a long text counted "
                             "(more: 413; default: --max-texts full windows)")
    parser.add_argument("--max-batch-tokens", type=COUNT, default=DEFAULT_MAX_BATCH_TOKENS,
                        help="most tokens in one model run; a larger request runs in parts, and short requests "
                             "go between them")
    parser.add_argument("--max-batch", type=COUNT, default=DEFAULT_MAX_BATCH,
                        help="most texts gathered from concurrent requests into one model run")
    parser.add_argument("--batch-wait-ms", type=Number(low=0), default=DEFAULT_BATCH_WAIT_MS,
                        help="how long a lone request waits for others to join its batch")
    parser.add_argument("--header-timeout", type=POSITIVE, default=DEFAULT_HEADER_TIMEOUT,
                        help="seconds a client has to send a request's line and headers (then 408 and closed)")
    parser.add_argument("--body-timeout", type=POSITIVE, default=DEFAULT_BODY_TIMEOUT,
                        help="seconds a client has to send a request's body (then 408)")
    parser.add_argument("--keep-alive", type=POSITIVE, default=DEFAULT_KEEP_ALIVE,
                        help="seconds an idle connection is kept open between requests")
    parser.add_argument("--max-connections", type=COUNT, default=DEFAULT_MAX_CONNECTIONS,
                        help="open connections at once; beyond it the one waiting longest for its headers is "
                             "closed, or 503 when all are busy; kept below the file-descriptor limit")
    parser.add_argument("--max-header-bytes", type=COUNT, default=DEFAULT_MAX_HEADER_BYTES,
                        help="bytes of a request's line and headers (more: 431)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: a GPU when there is one)")
    parser.add_argument("--no-access-log", action="store_true", help="do not log every request")


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    from bertforge.serving.app import serve
    from bertforge.serving.guard import ConnectionLimits

    connections = ConnectionLimits(header_timeout=args.header_timeout, body_timeout=args.body_timeout,
                                   keep_alive=args.keep_alive, max_connections=args.max_connections,
                                   max_header_bytes=args.max_header_bytes)
    serve(args.model, host=args.host, port=args.port, pooling=args.pooling, normalize=args.normalize,
          max_length=args.max_length, device=args.device, max_texts=args.max_texts,
          max_text_bytes=args.max_text_bytes, max_request_tokens=args.max_request_tokens,
          max_batch_tokens=args.max_batch_tokens, max_batch=args.max_batch, batch_wait_ms=args.batch_wait_ms,
          connections=connections, access_log=not args.no_access_log)
    return 0
