"""Serve a model directory over HTTP: ``bertforge serve --model DIR``.

:mod:`~bertforge.serving.limits` says how much a request may ask,
:mod:`~bertforge.serving.batcher` gathers concurrent requests into one model run,
:mod:`~bertforge.serving.service` holds the model and answers requests, and
:mod:`~bertforge.serving.app` is the HTTP layer (FastAPI and uvicorn, from the
``serve`` extra). Import what you need from those modules.
"""
