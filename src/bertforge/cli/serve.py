"""Serve a model directory over HTTP: POST /predict (fine-tuned classifiers), POST /embed,
GET /health, and the OpenAPI description at /openapi.json (docs at /docs). Requests that
arrive together are batched into one model run. Needs the serve extra."""

from __future__ import annotations

import argparse

from bertforge.cli.options import add_pooling
from bertforge.serving.limits import DEFAULT_BATCH_WAIT_MS, DEFAULT_MAX_BATCH, DEFAULT_MAX_TEXT_BYTES, DEFAULT_MAX_TEXTS

NAME = "serve"
SUMMARY = "serve a model over HTTP (predict, embed, health)"
EPILOG = ("example: bertforge serve --model runs/trec --port 8000, then: curl -H 'Content-Type: "
          "application/json' -d '{\"texts\": [\"Who wrote The Raven ?\"]}' http://127.0.0.1:8000/predict")
SHOW_DEFAULTS = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The model, the address, and the limits and batching of requests.

    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> args = parser.parse_args(["--model", "runs/trec", "--port", "0"])
    >>> args.host, args.port, args.max_texts, args.batch_wait_ms
    ('127.0.0.1', 0, 128, 2.0)
    """
    parser.add_argument("--model", required=True, help="model directory: a fine-tuned classifier, or any encoder")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on; anything but loopback lets other machines in")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (0: any free port)")
    add_pooling(parser, help="pooling for /embed")
    parser.add_argument("--normalize", action="store_true",
                        help="unit-length embeddings unless a request says otherwise")
    parser.add_argument("--max-length", type=int, help="truncate texts to this many tokens (default: the "
                                                       "classifier's training length, else the model's positions)")
    parser.add_argument("--max-texts", type=int, default=DEFAULT_MAX_TEXTS, help="texts per request (more: 413)")
    parser.add_argument("--max-text-bytes", type=int, default=DEFAULT_MAX_TEXT_BYTES,
                        help="UTF-8 bytes per text (more: 413)")
    parser.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH,
                        help="most texts gathered from concurrent requests into one model run")
    parser.add_argument("--batch-wait-ms", type=float, default=DEFAULT_BATCH_WAIT_MS,
                        help="how long a lone request waits for others to join its batch")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: a GPU when there is one)")
    parser.add_argument("--no-access-log", action="store_true", help="do not log every request")


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    from bertforge.serving.app import serve

    serve(args.model, host=args.host, port=args.port, pooling=args.pooling, normalize=args.normalize,
          max_length=args.max_length, device=args.device, max_texts=args.max_texts,
          max_text_bytes=args.max_text_bytes, max_batch=args.max_batch, batch_wait_ms=args.batch_wait_ms,
          access_log=not args.no_access_log)
    return 0
