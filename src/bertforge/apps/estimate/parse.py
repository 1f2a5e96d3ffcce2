"""Reading the numbers an estimate is given: counts (``128B``, ``20k``), prices, whole and positive values."""

from __future__ import annotations

import math
from typing import Sequence

from bertforge.errors import BertforgeError, UsageError

_SUFFIXES = {"k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9, "t": 1e12}


def parse_count(text: str | float, what: str = "count") -> float:
    """A positive count written like ``3.3e9``, ``128B``, ``3.3G``, ``500M`` or ``20k``; ``what``
    names it in the error.

    >>> parse_count("128B"), parse_count("3.3G"), parse_count("500M"), parse_count("20k")
    (128000000000.0, 3300000000.0, 500000000.0, 20000.0)
    >>> parse_count("1_000_000")
    1000000.0
    """
    cleaned = str(text).strip().replace("_", "")
    scale = 1.0
    if cleaned and cleaned[-1].lower() in _SUFFIXES:
        scale, cleaned = _SUFFIXES[cleaned[-1].lower()], cleaned[:-1]
    try:
        value = float(cleaned) * scale
    except ValueError:
        raise UsageError(
            f"{what} {str(text)!r} is not a number; write it like 3.3e9, 128B, 3.3G, 500M or 20k"
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{what} {str(text)!r} must be a positive number")
    return value


def parse_price(text: str | float | Sequence[float]) -> tuple[float, float]:
    """A price per device-hour, or a range ``low-high``, as ``(low, high)``.

    >>> parse_price("4.50-8.00"), parse_price("$2.49"), parse_price(3)
    ((4.5, 8.0), (2.49, 2.49), (3.0, 3.0))
    """
    if isinstance(text, (tuple, list)):
        parts = list(text)
    elif isinstance(text, (int, float)):
        parts = [text]
    else:
        parts = str(text).replace("$", "").split("-")
    try:
        values = [float(part) for part in parts]
    except (TypeError, ValueError):
        values = []
    if len(values) not in (1, 2) or not all(math.isfinite(v) and v > 0 for v in values):
        raise UsageError(
            f"price {text!r}: write a positive price per device-hour like 4.50, or a range like 4.50-8.00"
        )
    low, high = values[0], values[-1]
    if low > high:
        raise UsageError(f"price range {text!r} runs backwards; write the low price first, e.g. 4.50-8.00")
    return low, high


def whole_number(text: str | float, what: str) -> int:
    """A positive whole number, written as :func:`parse_count` reads it; ``what`` names it in the error.

    >>> whole_number("20k", "--steps"), whole_number(8, "devices")
    (20000, 8)
    """
    try:
        value = parse_count(text) if isinstance(text, str) else float(text)
    except (BertforgeError, TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0 and value == int(value)):
        raise UsageError(f"{what} must be a positive whole number, got {text!r}")
    return int(value)


def positive_number(value: float, what: str) -> float:
    """``value`` as a float when it is a finite number above zero; ``what`` names it in the error.

    >>> positive_number(96, "hours")
    96.0
    """
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise UsageError(f"{what} must be a positive number, got {value}")
    return float(value)


def split_values(text: str | None) -> list[str]:
    """The comma-separated values of one option (one per phase); none for an option not given.

    >>> split_values("128, 512"), split_values(None)
    (['128', '512'], [])
    """
    return [part.strip() for part in str(text).split(",")] if text is not None else []


__all__ = ["parse_count", "parse_price", "positive_number", "split_values", "whole_number"]
