"""The accelerators an estimate can price: their datasheet peaks, and which one this machine is."""

from __future__ import annotations

from dataclasses import dataclass

from bertforge.apps.estimate.parse import positive_number
from bertforge.errors import UsageError


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
    # False for a placeholder peak (the CPU's): a datasheet estimate has to use it, but a
    # measured or given duration is never compared with it.
    peak_known: bool = True

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
    Device("cpu", 1.0, "fp32", "CPU (a guess, not a datasheet figure: use --measure)", peak_known=False),
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
        raise UsageError(
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
            raise UsageError("this GPU is not in the device table; name one with --device or give "
                             "its dense peak with --peak-tflops")
    name = name or ("custom" if peak_tflops is not None else "h100")
    if peak_tflops is None:
        return get_device(name)
    peak = positive_number(peak_tflops, "--peak-tflops")
    known = DEVICES.get(name.strip().lower())
    return Device(name, peak, known.precision if known else "", "peak from --peak-tflops")


def default_torch_device() -> str:
    """Where ``--measure`` runs: ``cuda`` when there is a GPU, else ``cpu``.

    >>> default_torch_device() in ("cuda", "cpu")
    True
    """
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


__all__ = ["Device", "DEVICES", "default_torch_device", "detect_device", "get_device", "resolve_device"]
