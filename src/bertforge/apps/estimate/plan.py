"""What a run trains: the model's config, and the phases of token positions it spends at each length."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

from bertforge.apps.estimate.parse import parse_count, positive_number, split_values, whole_number
from bertforge.errors import UsageError
from bertforge.model.config import BertConfig

DEFAULT_SEQ_LEN = 128  # where BERT pretraining spends 90% of its steps


def build_config(preset: str | None = None, model: str | Path | None = None, *, layers: int | None = None,
                 hidden: int | None = None, heads: int | None = None, intermediate: int | None = None,
                 vocab_size: int | None = None, max_positions: int | None = None) -> BertConfig:
    """A preset (default ``base``) or a model's config.json, with sizes overridden.

    A new ``hidden`` brings Google's proportions along unless they are given too:
    one head per 64 dimensions, a feed-forward four times as wide.

    >>> config = build_config("base", hidden=512)
    >>> config.num_attention_heads, config.intermediate_size
    (8, 2048)
    """
    if model is not None:
        path = Path(model)
        base = BertConfig.from_json_file(path) if path.is_file() else BertConfig.from_pretrained(path)
    else:
        base = BertConfig.preset(preset or "base")
    given = {"layers": layers, "hidden": hidden, "heads": heads, "intermediate": intermediate,
             "vocab-size": vocab_size, "max-positions": max_positions}
    for flag, value in given.items():
        if value is not None and value < 1:
            raise UsageError(f"--{flag} must be a positive whole number, got {value}")
    if hidden is not None:
        heads = heads if heads is not None else max(1, hidden // 64)
        intermediate = intermediate if intermediate is not None else 4 * hidden
    fields = {"num_hidden_layers": layers, "hidden_size": hidden, "num_attention_heads": heads,
              "intermediate_size": intermediate, "vocab_size": vocab_size,
              "max_position_embeddings": max_positions}
    return dataclasses.replace(base, **{key: value for key, value in fields.items() if value is not None})


def check_length(config: BertConfig, seq_len: int) -> None:
    """Refuse a sequence length the model has no positions for.

    >>> check_length(BertConfig.preset("base"), 512)
    """
    if seq_len > config.max_position_embeddings:
        raise UsageError(
            f"sequence length {seq_len} is above the model's {config.max_position_embeddings} positions; "
            f"use --seq-len <= {config.max_position_embeddings} or more positions (--max-positions)"
        )


class Phase(NamedTuple):
    """A stretch of training at one sequence length; ``steps`` and ``batch_size`` when known.

    >>> Phase(3.3e9, 128).tokens
    3300000000.0
    """

    tokens: float
    seq_len: int
    steps: int | None = None
    batch_size: int | None = None


def _broadcast(lists: dict[str, list]) -> int:
    """How many phases the comma-separated options describe; each gives 1 or that many values."""
    count = max(len(values) for values in lists.values())
    for flag, values in lists.items():
        if len(values) not in (1, count):
            raise UsageError(
                f"{flag} has {len(values)} values but another option has {count}; give one value or one per phase"
            )
    return count


def _pick(values: list, index: int):
    return values[index] if len(values) > 1 else values[0]


def plan_phases(config: BertConfig, tokens: str | None = None, steps: str | None = None,
                batch_size: str | None = None, seq_len: str | None = None) -> list[Phase]:
    """Phases from the command line's strings; commas separate phases.

    ``tokens`` (``"3.3e9"``, ``"128B"``) or ``steps`` with ``batch_size`` (sequences
    per step, all devices together) give the token count; ``seq_len`` (default 128)
    the attention length of each phase. No count gives no phases.

    >>> devlin = plan_phases(BertConfig.preset("large"), steps="900000,100000", batch_size="256",
    ...                      seq_len="128,512")
    >>> [(phase.tokens, phase.seq_len) for phase in devlin]
    [(29491200000.0, 128), (13107200000.0, 512)]
    >>> plan_phases(BertConfig.preset("base"), tokens="3.3B")
    [Phase(tokens=3300000000.0, seq_len=128, steps=None, batch_size=None)]
    """
    lengths = [whole_number(value, "--seq-len") for value in split_values(seq_len or str(DEFAULT_SEQ_LEN))]
    for length in lengths:
        check_length(config, length)
    # Every value is read before the options are combined, so a bad one is the error named.
    counts = [parse_count(value, "--tokens") for value in split_values(tokens)]
    step_counts = [whole_number(value, "--steps") for value in split_values(steps)]
    batches = [whole_number(value, "--batch-size") for value in split_values(batch_size)]
    if tokens is not None and steps is not None:
        raise UsageError("give --tokens or --steps with --batch-size, not both")
    if tokens is not None:
        n = _broadcast({"--tokens": counts, "--seq-len": lengths})
        return [Phase(_pick(counts, k), _pick(lengths, k)) for k in range(n)]
    if steps is not None:
        if batch_size is None:
            raise UsageError("--steps needs --batch-size (sequences per step, all devices together)")
        n = _broadcast({"--steps": step_counts, "--batch-size": batches, "--seq-len": lengths})
        return [Phase(float(_pick(step_counts, k) * _pick(batches, k) * _pick(lengths, k)), _pick(lengths, k),
                      _pick(step_counts, k), _pick(batches, k)) for k in range(n)]
    return []


def as_phases(config: BertConfig, tokens, seq_len: int) -> tuple[Phase, ...]:
    """The phases a Python caller gives: a count at ``seq_len``, or :class:`Phase` / ``(tokens, seq_len)`` items.

    >>> [phase.seq_len for phase in as_phases(BertConfig.preset("base"), [(3e9, 128), (1e9, 512)], 128)]
    [128, 512]
    >>> as_phases(BertConfig.preset("base"), "3.3B", 128)
    (Phase(tokens=3300000000.0, seq_len=128, steps=None, batch_size=None),)
    """
    if tokens is None:
        return ()
    if isinstance(tokens, (int, float, str)):
        phases = [Phase(parse_count(tokens) if isinstance(tokens, str) else tokens, seq_len)]
    else:
        phases = [phase if isinstance(phase, Phase) else Phase(*phase) for phase in tokens]
    if not phases:
        raise UsageError("no training phases given; give a token count")
    for phase in phases:
        positive_number(phase.tokens, "the token count")
        whole_number(phase.seq_len, "the sequence length")
        check_length(config, phase.seq_len)
    return tuple(phases)


__all__ = ["DEFAULT_SEQ_LEN", "Phase", "as_phases", "build_config", "check_length", "plan_phases"]
