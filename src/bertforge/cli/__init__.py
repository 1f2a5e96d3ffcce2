"""The ``bertforge`` command: :func:`main` (in ``app.py``) and one module per command beside it."""

from bertforge.cli.app import main

__all__ = ["main"]
