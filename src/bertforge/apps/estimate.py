"""What a BERT pretraining run costs: FLOPs, device-hours, wall-clock hours and money.

Three ways to get the time, from least to most known:

- **datasheet**: training FLOPs / (devices x dense peak x assumed utilisation);
- **measured** (``--measure``): a few real training steps on this machine give
  tokens per second per device; the run is assumed to scale linearly with devices;
- **hours given** (``--hours``): the duration is known, so cost = devices x hours x
  price, and the token count (when given) tells what utilisation that implies.

Training FLOPs are 3 x the forward FLOPs per token x tokens: the matrix products
of the encoder, the attention scores and the masked-LM decoder on the 15% of
positions that carry a label; :func:`forward_flops_per_token` lists what is and is
not counted.

The seed article's arithmetic: BERT-Large was pretrained on 16 Cloud TPU devices
(64 chips) for about four days; at $4.50-$8.00 per device-hour (the range matches
the on-demand hourly prices then listed for a Cloud TPU v2 and a v3 device) that is
16 x 96 x $4.50-$8.00 = $6,912-$12,288. The original recipe (Devlin et al., 2018)
was 1,000,000 steps of 256 sequences, 90% of the steps at length 128 and 10% at
512. Here it is modelled as two phases of token positions (padding included), each
with its own attention length: 256 x (900,000 x 128 + 100,000 x 512) = 42.6 billion.
On TPU v3 devices the four days imply a few percent of the datasheet peak (on v2
devices, about 2.3 times that):

>>> from bertforge.cli.main import main
>>> main(["estimate", "--preset", "large", "--steps", "900000,100000", "--batch-size", "256",
...       "--seq-len", "128,512", "--device", "tpu-v3", "--devices", "16", "--hours", "96",
...       "--price", "4.50-8.00"])
model         large: 24 layers, hidden 1024, 16 heads, intermediate 4096, vocab 30522 (336,226,108 parameters)
tokens        42.6B = 900,000 steps x 256 x 128 + 100,000 steps x 256 x 512
FLOPs         8.15e+19 to train (1.91e+09 per token = 3 x forward; MLM decoder on 15% of positions)
device        16 x tpu-v3: Cloud TPU v3 device (4 chips), 420 TFLOP/s bf16 dense peak each
duration      96 h, given
throughput    123,259 tokens/s, implied by the hours
utilisation   3.5% of peak, implied by the hours
device-hours  1,536
wall-clock    96.0 h (4.0 days)
price         $4.50 - $8.00 per device-hour
cost          $6,912 - $12,288
0

The same from Python:

>>> from bertforge import BertConfig
>>> run = estimate_run(BertConfig.preset("large"), None, device="tpu-v3", devices=16,
...                    hours=96, price=(4.50, 8.00))
>>> run.device_hours, run.cost
(1536.0, (6912.0, 12288.0))
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence

from bertforge.model.config import BertConfig
from bertforge.errors import BertforgeError

# The share of the dense peak a training run is assumed to turn into model FLOPs
# when nothing is measured: 40% is what this project aims at for a tuned bf16
# pretraining run (BENCHMARKS.md), a middle figure for large dense models. Our own
# uncompiled BERT-base step measured about 20% of an H100's peak there, and small
# models reach far less (their matrices cannot fill the tensor cores), so the
# default is optimistic for them: prefer --measure.
DEFAULT_UTILIZATION = 0.4

# BERT's recipe labels 15% of the positions; the decoder runs only there (in
# Google's implementation and in ours), so only that share of its cost counts.
DEFAULT_MLM_FRACTION = 0.15

DEFAULT_SEQ_LEN = 128  # where BERT pretraining spends 90% of its steps


@dataclass(frozen=True)
class Device:
    """One accelerator as it is rented: its dense peak at its training precision.

    >>> DEVICES["a100"].peak_flops
    312000000000000.0
    """

    name: str
    peak_tflops: float  # dense (no structured sparsity), per device
    precision: str
    description: str

    @property
    def peak_flops(self) -> float:
        return self.peak_tflops * 1e12


# Datasheet peaks for dense matrix maths at the precision one trains in. Vendors
# often print the 2:4-sparsity figure first; it is twice these and no BERT run
# reaches it.
DEVICES = {device.name: device for device in (
    # NVIDIA H100 Tensor Core GPU datasheet, SXM5: BF16 Tensor Core 1,979 TFLOPS "with sparsity" -> 989 dense.
    Device("h100", 989.0, "bf16", "NVIDIA H100 SXM"),
    # NVIDIA H200 Tensor Core GPU datasheet: the same BF16 Tensor Core figure as the H100 SXM
    # (1,979 TFLOPS with sparsity); it differs in memory, not in matrix throughput.
    Device("h200", 989.0, "bf16", "NVIDIA H200 SXM"),
    # NVIDIA A100 Tensor Core GPU datasheet: BF16 Tensor Core 312 TFLOPS (624 with sparsity).
    Device("a100", 312.0, "bf16", "NVIDIA A100"),
    # NVIDIA V100 datasheet, SXM2: Tensor Performance 125 TFLOPS (fp16 multiply, fp32 accumulate;
    # no bf16 on Volta). The PCIe card is 112.
    Device("v100", 125.0, "fp16", "NVIDIA V100 SXM2"),
    # NVIDIA T4 datasheet: Mixed Precision (FP16/FP32) 65 TFLOPS.
    Device("t4", 65.0, "fp16", "NVIDIA T4"),
    # Google Cloud TPU v2: a Cloud TPU device is 4 chips, 180 TFLOPS (Google's 2017 Cloud TPU
    # announcement); the Cloud TPU v2 documentation gives 45 TFLOPS (bf16) per chip.
    Device("tpu-v2", 180.0, "bf16", "Cloud TPU v2 device (4 chips)"),
    Device("tpu-v2-chip", 45.0, "bf16", "Cloud TPU v2 chip"),
    # Google Cloud TPU v3: 420 TFLOPS per 4-chip device (Google's 2018 Cloud TPU v3 announcement);
    # the Cloud TPU v3 documentation (system architecture) gives 123 TFLOPS (bf16) per chip.
    # 4 x 123 = 492 is more than 420: the two published figures disagree; each is kept as published.
    Device("tpu-v3", 420.0, "bf16", "Cloud TPU v3 device (4 chips)"),
    Device("tpu-v3-chip", 123.0, "bf16", "Cloud TPU v3 chip"),
    # Not from a datasheet: a guess for a desktop-class multi-core x86 CPU in fp32 (8 cores x
    # 2 AVX2 FMA units x 8 lanes x 2 FLOPs x ~4 GHz = ~1 TFLOP/s). CPUs vary by 10x either
    # way: use --measure.
    Device("cpu", 1.0, "fp32", "CPU (a guess, not a datasheet figure: use --measure)"),
)}

# Substrings of torch.cuda.get_device_name() -> table entry, for --measure.
_GPU_NAMES = {"H100": "h100", "H200": "h200", "A100": "a100", "V100": "v100", "T4": "t4"}


def get_device(device: str | Device) -> Device:
    """A table entry by name (any case), or a :class:`Device` passed through.

    >>> get_device("H100").peak_tflops
    989.0
    """
    if isinstance(device, Device):
        return device
    found = DEVICES.get(str(device).strip().lower())
    if found is None:
        raise BertforgeError(
            f"unknown device {device!r}; use one of {', '.join(DEVICES)} (or give its peak with --peak-tflops)"
        )
    return found


def resolve_device(name: str | None = None, peak_tflops: float | None = None, measuring: bool = False) -> Device:
    """The device the command line names; ``peak_tflops`` sets (or overrides) its peak.

    With nothing named, ``--measure`` looks the machine it runs on up in the table
    and an estimate without a measurement assumes an H100.

    >>> resolve_device("mi300x", peak_tflops=1307).peak_tflops
    1307.0
    """
    if name is None and measuring:
        name = detect_device(default_torch_device())
        if name is None and peak_tflops is None:
            raise BertforgeError("this GPU is not in the device table; name one with --device or give "
                                 "its dense peak with --peak-tflops")
    name = name or ("custom" if peak_tflops is not None else "h100")
    if peak_tflops is None:
        return get_device(name)
    peak = _positive(peak_tflops, "--peak-tflops")
    known = DEVICES.get(name.strip().lower())
    return Device(name, peak, known.precision if known else "", "peak from --peak-tflops")


# -- counting ----------------------------------------------------------------------


def forward_flops_per_token(config: BertConfig, seq_len: int,
                            mlm_fraction: float = DEFAULT_MLM_FRACTION) -> float:
    """Forward-pass FLOPs per token of BERT pretraining (one multiply-add = 2 FLOPs).

    Counted, with h hidden, i intermediate, L layers, V vocabulary, S sequence length:

    - per encoder layer: the query, key, value and output projections (4 x 2h^2),
      the two feed-forward matrices (2 x 2hi), the attention scores Q.K^T (2Sh) and
      the attention-weighted sum of the values (2Sh);
    - the masked-LM head on the ``mlm_fraction`` of positions that carry a label:
      its transform (2h^2) and the decoder to the vocabulary (2hV). 0.15 is BERT's
      recipe and what this package computes; pass 1.0 for code that decodes every
      position.

    Not counted: embedding lookups, biases, LayerNorm, GELU, softmax, dropout, the
    pooler and next-sentence classifier (2h^2 + 4h once per sequence: under 0.1%
    at length 128), and the optimizer update.

    >>> config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
    ...                     num_attention_heads=4, intermediate_size=64)
    >>> forward_flops_per_token(config, 16, mlm_fraction=0.0)  # 2 x (8192 + 8192 + 2048)
    36864.0
    """
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    projections = 4 * 2 * h * h
    feed_forward = 2 * 2 * h * i
    attention = 2 * 2 * seq_len * h
    mlm_head = 2 * h * h + 2 * h * config.vocab_size
    return float(layers * (projections + feed_forward + attention) + mlm_fraction * mlm_head)


def training_flops_per_token(config: BertConfig, seq_len: int,
                             mlm_fraction: float = DEFAULT_MLM_FRACTION) -> float:
    """Forward + backward FLOPs per token: 3 x :func:`forward_flops_per_token`.

    The backward pass costs twice the forward: one product for the gradient of the
    inputs, one for the gradient of the weights. Without the MLM head this is the
    encoder-only figure of :func:`bertforge.model.bert.model_flops_per_token`:

    >>> from bertforge.model.bert import model_flops_per_token
    >>> config = BertConfig.preset("base")
    >>> training_flops_per_token(config, 128, mlm_fraction=0.0) == model_flops_per_token(config, 128)
    True
    """
    return 3.0 * forward_flops_per_token(config, seq_len, mlm_fraction)


def pretraining_parameters(config: BertConfig) -> int:
    """Parameters of :class:`bertforge.BertForPreTraining` (the decoder shares the embedding matrix).

    >>> pretraining_parameters(BertConfig.preset("base"))
    110106428
    """
    h, i, vocab = config.hidden_size, config.intermediate_size, config.vocab_size
    embeddings = (vocab + config.max_position_embeddings + config.type_vocab_size) * h + 2 * h
    layer = 4 * (h * h + h) + (h * i + i) + (i * h + h) + 2 * 2 * h
    pooler = h * h + h
    heads = (h * h + h) + 2 * h + vocab + (2 * h + 2)  # transform, its LayerNorm, decoder bias, next sentence
    return embeddings + config.num_hidden_layers * layer + pooler + heads


# -- parsing -----------------------------------------------------------------------

_SUFFIXES = {"k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9, "t": 1e12}


def parse_count(text: str | float) -> float:
    """A positive count written like ``3.3e9``, ``128B``, ``3.3G``, ``500M`` or ``20k``.

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
        raise BertforgeError(
            f"count {str(text)!r} is not a number; write it like 3.3e9, 128B, 3.3G, 500M or 20k"
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise BertforgeError(f"count {str(text)!r} must be a positive number")
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
        raise BertforgeError(
            f"price {text!r}: write a positive price per device-hour like 4.50, or a range like 4.50-8.00"
        )
    low, high = values[0], values[-1]
    if low > high:
        raise BertforgeError(f"price range {text!r} runs backwards; write the low price first, e.g. 4.50-8.00")
    return low, high


def _whole(text: str | float, what: str) -> int:
    try:
        value = parse_count(text) if isinstance(text, str) else float(text)
    except (BertforgeError, TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0 and value == int(value)):
        raise BertforgeError(f"{what} must be a positive whole number, got {text!r}")
    return int(value)


def _positive(value: float, what: str) -> float:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise BertforgeError(f"{what} must be a positive number, got {value}")
    return float(value)


def _check_length(config: BertConfig, seq_len: int) -> None:
    if seq_len > config.max_position_embeddings:
        raise BertforgeError(
            f"sequence length {seq_len} is above the model's {config.max_position_embeddings} positions; "
            f"use --seq-len <= {config.max_position_embeddings} or more positions (--max-positions)"
        )


# -- what is being trained -----------------------------------------------------------


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
            raise BertforgeError(f"--{flag} must be a positive whole number, got {value}")
    if hidden is not None:
        heads = heads if heads is not None else max(1, hidden // 64)
        intermediate = intermediate if intermediate is not None else 4 * hidden
    fields = {"num_hidden_layers": layers, "hidden_size": hidden, "num_attention_heads": heads,
              "intermediate_size": intermediate, "vocab_size": vocab_size,
              "max_position_embeddings": max_positions}
    return dataclasses.replace(base, **{key: value for key, value in fields.items() if value is not None})


class Phase(NamedTuple):
    """A stretch of training at one sequence length; ``steps`` and ``batch_size`` when known."""

    tokens: float
    seq_len: int
    steps: int | None = None
    batch_size: int | None = None


def _values(text: str | None) -> list[str]:
    return [part.strip() for part in str(text).split(",")] if text is not None else []


def _broadcast(lists: dict[str, list]) -> int:
    """How many phases the comma-separated options describe; each gives 1 or that many values."""
    count = max(len(values) for values in lists.values())
    for flag, values in lists.items():
        if len(values) not in (1, count):
            raise BertforgeError(
                f"{flag} has {len(values)} values but another option has {count}; give one value or one per phase"
            )
    return count


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
    lengths = [_whole(value, "--seq-len") for value in _values(seq_len or str(DEFAULT_SEQ_LEN))]
    for length in lengths:
        _check_length(config, length)
    if tokens is not None and steps is not None:
        raise BertforgeError("give --tokens or --steps with --batch-size, not both")
    if tokens is not None:
        counts = [parse_count(value) for value in _values(tokens)]
        n = _broadcast({"--tokens": counts, "--seq-len": lengths})
        return [Phase(_pick(counts, k), _pick(lengths, k)) for k in range(n)]
    if steps is not None:
        if batch_size is None:
            raise BertforgeError("--steps needs --batch-size (sequences per step, all devices together)")
        step_counts = [_whole(value, "--steps") for value in _values(steps)]
        batches = [_whole(value, "--batch-size") for value in _values(batch_size)]
        n = _broadcast({"--steps": step_counts, "--batch-size": batches, "--seq-len": lengths})
        return [Phase(float(_pick(step_counts, k) * _pick(batches, k) * _pick(lengths, k)), _pick(lengths, k),
                      _pick(step_counts, k), _pick(batches, k)) for k in range(n)]
    return []


def _pick(values: list, index: int):
    return values[index] if len(values) > 1 else values[0]


# -- the estimate --------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """The answer: what the run computes, how long it takes, what it costs.

    ``basis`` says where the time came from: ``"datasheet"`` (peak x assumed
    utilisation), ``"measured"`` (tokens/s timed here) or ``"hours"`` (given).
    ``utilization`` is the assumed one, or the one the measurement or the hours
    imply. ``tokens_per_second`` is for all devices together; ``measured`` holds
    the timed tokens/s of one device by sequence length. ``cost`` is ``(low, high)``.
    """

    model: dict[str, Any]
    device: str
    device_description: str
    precision: str
    devices: int
    peak_flops: float
    basis: str
    hours: float
    device_hours: float
    phases: tuple[Phase, ...] = ()
    mlm_fraction: float = DEFAULT_MLM_FRACTION
    tokens: float | None = None
    flops: float | None = None
    utilization: float | None = None
    tokens_per_second: float | None = None
    measured: dict[int, float] | None = None
    price: tuple[float, float] | None = None
    cost: tuple[float, float] | None = None

    @property
    def flops_per_token(self) -> float | None:
        return self.flops / self.tokens if self.flops is not None and self.tokens else None

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["phases"] = [phase._asdict() for phase in self.phases]
        values["flops_per_token"] = self.flops_per_token
        return values


def _model_summary(config: BertConfig, name: str | None) -> dict[str, Any]:
    return {"name": name, "layers": config.num_hidden_layers, "hidden": config.hidden_size,
            "heads": config.num_attention_heads, "intermediate": config.intermediate_size,
            "vocab_size": config.vocab_size, "max_positions": config.max_position_embeddings,
            "parameters": pretraining_parameters(config)}


def _as_phases(config: BertConfig, tokens, seq_len: int) -> tuple[Phase, ...]:
    if tokens is None:
        return ()
    if isinstance(tokens, (int, float, str)):
        phases = [Phase(parse_count(tokens) if isinstance(tokens, str) else tokens, seq_len)]
    else:
        phases = [phase if isinstance(phase, Phase) else Phase(*phase) for phase in tokens]
    if not phases:
        raise BertforgeError("no training phases given; give a token count")
    for phase in phases:
        _positive(phase.tokens, "the token count")
        _whole(phase.seq_len, "the sequence length")
        _check_length(config, phase.seq_len)
    return tuple(phases)


def estimate_run(config: BertConfig, tokens: float | str | Sequence[Phase | tuple] | None,
                 device: str | Device = "h100", devices: int = 1, utilization: float = DEFAULT_UTILIZATION,
                 price: float | str | tuple[float, float] | None = None, hours: float | None = None, *,
                 seq_len: int = DEFAULT_SEQ_LEN, mlm_fraction: float = DEFAULT_MLM_FRACTION,
                 tokens_per_second: float | Mapping[int, float] | None = None,
                 name: str | None = None) -> Estimate:
    """FLOPs, time and cost of pretraining ``config`` on ``tokens`` with ``devices`` x ``device``.

    ``tokens`` is a count at ``seq_len``, or a list of :class:`Phase` (or
    ``(tokens, seq_len)`` pairs) for a run whose length changes. The time comes
    from ``hours`` when given; else from ``tokens_per_second`` (one device, a
    number or ``{seq_len: tokens/s}``, e.g. from :func:`measure_tokens_per_second`);
    else from the device's peak x ``utilization``. ``price`` is per device-hour:
    a number, ``(low, high)`` or ``"4.50-8.00"``.

    >>> config = BertConfig.preset("base")
    >>> one = estimate_run(config, 3.3e9, device="a100", devices=1, utilization=0.5)
    >>> eight = estimate_run(config, 3.3e9, device="a100", devices=8, utilization=0.5, price=2.0)
    >>> round(one.hours / eight.hours, 6), round(eight.device_hours, 1), round(eight.cost[0], 2)
    (8.0, 3.2, 6.41)
    """
    spec = get_device(device)
    devices = _whole(devices, "devices")
    utilization = _positive(utilization, "utilization")
    if utilization > 1:
        raise BertforgeError(f"utilization is a fraction of the peak, at most 1, got {utilization}")
    if not 0 <= mlm_fraction <= 1:
        raise BertforgeError(f"mlm_fraction must be between 0 and 1, got {mlm_fraction}")
    phases = _as_phases(config, tokens, seq_len)
    prices = parse_price(price) if price is not None else None
    if hours is not None:
        hours = _positive(hours, "hours")
        if tokens_per_second is not None:
            raise BertforgeError("give a known duration (--hours) or a measurement (--measure), not both")
    elif not phases:
        raise BertforgeError("give the token count (--tokens 3.3e9, or --steps N --batch-size B) "
                             "or a known duration (--hours)")

    total_tokens = sum(phase.tokens for phase in phases) if phases else None
    flops = sum(phase.tokens * training_flops_per_token(config, phase.seq_len, mlm_fraction)
                for phase in phases) if phases else None
    measured = None
    if hours is not None:
        basis, seconds = "hours", hours * 3600
    elif tokens_per_second is not None:
        measured = _per_length(tokens_per_second, phases)
        basis = "measured"
        seconds = sum(phase.tokens / (devices * measured[phase.seq_len]) for phase in phases)
    else:
        basis, seconds = "datasheet", flops / (devices * spec.peak_flops * utilization)
    if basis != "datasheet":
        utilization = flops / (devices * spec.peak_flops * seconds) if flops is not None else None
    device_hours = devices * seconds / 3600
    return Estimate(
        model=_model_summary(config, name), device=spec.name, device_description=spec.description,
        precision=spec.precision, devices=devices, peak_flops=spec.peak_flops, basis=basis,
        hours=seconds / 3600, device_hours=device_hours, phases=phases, mlm_fraction=mlm_fraction,
        tokens=total_tokens, flops=flops, utilization=utilization,
        tokens_per_second=total_tokens / seconds if total_tokens else None, measured=measured,
        price=prices, cost=(device_hours * prices[0], device_hours * prices[1]) if prices else None,
    )


def _per_length(tokens_per_second: float | Mapping[int, float], phases: tuple[Phase, ...]) -> dict[int, float]:
    if isinstance(tokens_per_second, Mapping):
        rates = {int(length): float(rate) for length, rate in tokens_per_second.items()}
    else:
        rates = {phase.seq_len: float(tokens_per_second) for phase in phases}
    for phase in phases:
        if phase.seq_len not in rates:
            raise BertforgeError(f"no measured tokens/s for sequence length {phase.seq_len}")
        _positive(rates[phase.seq_len], "measured tokens/s")
    return rates


# -- measuring -----------------------------------------------------------------------


def default_torch_device() -> str:
    """Where ``--measure`` runs: ``cuda`` when there is a GPU, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def detect_device(torch_device: str) -> str | None:
    """The table entry for the machine ``torch_device`` names, None for a GPU the table lacks.

    >>> detect_device("cpu")
    'cpu'
    """
    import torch

    if torch.device(torch_device).type != "cuda":
        return "cpu"
    gpu = torch.cuda.get_device_name(torch.device(torch_device))
    return next((entry for key, entry in _GPU_NAMES.items() if key in gpu), None)


def _random_batch(config: BertConfig, batch_size: int, seq_len: int, mlm_fraction: float, device):
    """Full-length rows of random ids, with exactly the MLM share of positions labelled,
    so the timed work is the work :func:`training_flops_per_token` counts."""
    import torch

    from bertforge.model.layout import TokenSelection

    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, config.vocab_size, (batch_size, seq_len), generator=generator)
    segments = (torch.arange(seq_len) >= seq_len // 2).long().expand(batch_size, -1) % config.type_vocab_size
    labelled = max(1, round(mlm_fraction * seq_len))
    chosen = torch.rand(batch_size, seq_len, generator=generator).argsort(dim=1)[:, :labelled]
    labels = torch.full_like(ids, -100).scatter(1, chosen, ids.gather(1, chosen))
    pair_labels = torch.randint(0, 2, (batch_size,), generator=generator)
    # The labelled tokens are located on the CPU, as the data pipeline does, so a
    # GPU step never waits to read them back.
    selection = TokenSelection.for_predictions(torch.nonzero(labels.reshape(-1) != -100, as_tuple=True)[0],
                                                torch.arange(batch_size + 1) * seq_len, include_first=True)
    return tuple(t.to(device) for t in (ids, segments, labels, pair_labels)) + (selection.to(device),)


def measure_tokens_per_second(config: BertConfig, batch_size: int = 8, seq_len: int = DEFAULT_SEQ_LEN,
                              steps: int = 5, device: str | None = None, *, warmup: int = 2,
                              mlm_fraction: float = DEFAULT_MLM_FRACTION) -> float:
    """Tokens per second of real pretraining steps of ``config`` on one device of this machine.

    Each step is :class:`bertforge.BertForPreTraining` forward (masked LM + next
    sentence) and backward, then a fused AdamW update: bf16 autocast on CUDA, fp32
    on the CPU. ``warmup`` steps run first and are not timed. ``device`` defaults
    to ``cuda`` when there is one.

    >>> tiny = BertConfig.preset("tiny", vocab_size=1000)
    >>> measure_tokens_per_second(tiny, batch_size=2, seq_len=16, steps=1, device="cpu", warmup=1) > 0
    True
    """
    import torch

    from bertforge.model.bert import BertForPreTraining

    batch_size, seq_len = _whole(batch_size, "batch size"), _whole(seq_len, "sequence length")
    steps = _whole(steps, "measured steps")
    _check_length(config, seq_len)
    target = torch.device(device or default_torch_device())
    torch.manual_seed(0)
    model = BertForPreTraining(config).to(target).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    ids, segments, labels, pair_labels, selection = _random_batch(config, batch_size, seq_len, mlm_fraction, target)

    def step() -> None:
        with torch.autocast(target.type, dtype=torch.bfloat16, enabled=target.type == "cuda"):
            loss = model(ids, None, segments, masked_lm_labels=labels, next_sentence_label=pair_labels,
                         prediction_tokens=selection).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    _synchronize(target)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    _synchronize(target)
    return batch_size * seq_len * steps / (time.perf_counter() - started)


def measure_phases(config: BertConfig, phases: Sequence[Phase], devices: int = 1, batch_size: str | None = None,
                   steps: int = 5, hours: float | None = None,
                   mlm_fraction: float = DEFAULT_MLM_FRACTION) -> tuple[dict[int, float], str]:
    """Time each sequence length the phases use, on one device here: ``({seq_len: tokens/s}, how)``.

    A device runs its share of the batch: the phase's (or ``batch_size``'s) sequences
    per step divided by ``devices``; without either, 8 per device on a CPU, 32 on a GPU.
    """
    if hours is not None:
        raise BertforgeError("give a known duration (--hours) or a measurement (--measure), not both")
    if not phases:
        raise BertforgeError("--measure needs the token count: --tokens 3.3e9, or --steps N --batch-size B")
    devices = _whole(devices, "devices")
    target = default_torch_device()
    given = [_whole(value, "--batch-size") for value in _values(batch_size)]
    rates, batches = {}, {}
    for phase in phases:
        if phase.seq_len in rates:
            continue
        total = phase.batch_size or (given[0] if given else None)
        per_device = max(1, math.ceil(total / devices)) if total else (32 if target == "cuda" else 8)
        rates[phase.seq_len] = measure_tokens_per_second(config, per_device, phase.seq_len, steps, target,
                                                         mlm_fraction=mlm_fraction)
        batches[phase.seq_len] = per_device
    sizes = ", ".join(f"{batch} x {length}" for length, batch in batches.items())
    precision = "bf16 autocast" if target == "cuda" else "fp32"
    timed = f"{steps} timed step{'s' if steps != 1 else ''}"
    return rates, f"{target}, {precision}, batch {sizes} per device, {timed} after 2 warm-up"


def _synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- printing ------------------------------------------------------------------------


def format_count(value: float) -> str:
    """A count the way :func:`parse_count` reads it.

    >>> format_count(42_598_400_000), format_count(3.3e6), format_count(512)
    ('42.6B', '3.3M', '512')
    """
    for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}" if value >= 1 else f"{value:.3g}"


def _money(value: float) -> str:
    return f"${value:,.0f}" if value >= 100 else f"${value:,.2f}"


def _duration(hours: float) -> str:
    if hours < 1:
        return f"{hours * 60:.1f} min"
    return f"{hours:,.1f} h" + (f" ({hours / 24:,.1f} days)" if hours >= 48 else "")


def _describe_tokens(estimate: Estimate) -> str:
    phases = estimate.phases
    if len(phases) == 1 and phases[0].steps is None:
        return f"{format_count(estimate.tokens)} at length {phases[0].seq_len}"
    parts = [f"{phase.steps:,} steps x {phase.batch_size:,} x {phase.seq_len}" if phase.steps is not None
             else f"{format_count(phase.tokens)} at length {phase.seq_len}" for phase in phases]
    return f"{format_count(estimate.tokens)} = " + " + ".join(parts)


def format_estimate(estimate: Estimate, measurement: str | None = None) -> str:
    """The estimate as a two-column table; ``measurement`` describes how tokens/s were timed."""
    model = estimate.model
    rows = [("model", f"{model['name'] or 'custom'}: {model['layers']} layers, hidden {model['hidden']}, "
                      f"{model['heads']} heads, intermediate {model['intermediate']}, vocab {model['vocab_size']} "
                      f"({model['parameters']:,} parameters)")]
    if estimate.tokens is not None:
        rows.append(("tokens", _describe_tokens(estimate)))
        where = ("all positions" if estimate.mlm_fraction == 1
                 else f"{estimate.mlm_fraction:.0%} of positions")
        rows.append(("FLOPs", f"{estimate.flops:.3g} to train ({estimate.flops_per_token:.3g} per token = "
                              f"3 x forward; MLM decoder on {where})"))
    precision = f"{estimate.precision} " if estimate.precision else ""
    rows.append(("device", f"{estimate.devices} x {estimate.device}: {estimate.device_description}, "
                           f"{estimate.peak_flops / 1e12:,.4g} TFLOP/s {precision}dense peak each"))
    rows += _timing_rows(estimate, measurement)
    rows += [("device-hours", _number(estimate.device_hours)), ("wall-clock", _duration(estimate.hours))]
    if estimate.price is not None:
        low, high = estimate.price
        price = f"${low:,.2f}" if low == high else f"${low:,.2f} - ${high:,.2f}"
        cost = _money(estimate.cost[0]) if low == high else f"{_money(estimate.cost[0])} - {_money(estimate.cost[1])}"
        rows += [("price", f"{price} per device-hour"), ("cost", cost)]
    width = max(len(label) for label, _ in rows) + 2
    return "\n".join(f"{label:<{width}}{value}" for label, value in rows)


def _timing_rows(estimate: Estimate, measurement: str | None) -> list[tuple[str, str]]:
    rows = []
    if estimate.basis == "hours":
        rows.append(("duration", f"{estimate.hours:g} h, given"))
        throughput = utilisation = "implied by the hours"
    elif estimate.basis == "measured":
        rates = [f"{rate:,.0f} at length {length}" for length, rate in sorted(estimate.measured.items())]
        rows.append(("measured", "tokens/s per device: " + ", ".join(rates)
                     + (f" ({measurement})" if measurement else "")))
        throughput = "measured, assuming it scales linearly with devices"
        utilisation = "implied by the measurement"
    else:
        throughput, utilisation = "from peak x utilisation", "assumed"
    if estimate.tokens_per_second is not None:
        rows.append(("throughput", f"{estimate.tokens_per_second:,.0f} tokens/s, {throughput}"))
    if estimate.utilization is not None:
        note = " (above the peak: check the device or the hours)" if estimate.utilization > 1 else ""
        rows.append(("utilisation", f"{estimate.utilization:.1%} of peak, {utilisation}{note}"))
    return rows


__all__ = [
    "Device", "DEVICES", "DEFAULT_UTILIZATION", "DEFAULT_MLM_FRACTION", "Estimate", "Phase", "build_config",
    "detect_device", "estimate_run", "format_count", "format_estimate", "forward_flops_per_token", "get_device",
    "measure_phases", "measure_tokens_per_second", "parse_count", "parse_price", "plan_phases",
    "pretraining_parameters", "resolve_device", "training_flops_per_token",
]
