"""FLOPs, device-hours, wall-clock hours and cost of a pretraining run: a model size, a token
count and a device. The time comes from --hours when known, from --measure (real steps timed
here), or from the device's datasheet peak x --utilization."""

from __future__ import annotations

import argparse
import json

NAME = "estimate"
SUMMARY = "FLOPs, device-hours and cost of a pretraining run"
EPILOG = ("example (BERT-Large as Devlin et al. pretrained it: 16 TPU devices x 96 h x $4.50-$8.00 = "
           "$6,912-$12,288): bertforge estimate --preset large --steps 900000,100000 --batch-size 256 "
           "--seq-len 128,512 --device tpu-v3 --devices 16 --hours 96 --price 4.50-8.00")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The model size, the token count, and the devices, time and price.

    The device table and the default rates come from ``bertforge.apps.estimate``,
    which imports no torch until ``--measure`` runs.

    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> args = parser.parse_args(["--preset", "large", "--tokens", "128B", "--device", "tpu-v3"])
    >>> args.tokens, args.devices, args.utilization
    ('128B', 1, 0.4)
    """
    from bertforge.apps.estimate import DEFAULT_MLM_FRACTION, DEFAULT_UTILIZATION, DEVICES
    from bertforge.cli.options import COUNT
    from bertforge.model.config import PRESETS

    size = parser.add_argument_group("model size")
    which = size.add_mutually_exclusive_group()
    which.add_argument("--preset", choices=list(PRESETS), help="a BERT size by name (default: base)")
    which.add_argument("--model", help="a model directory or its config.json")
    size.add_argument("--layers", type=int, help="encoder blocks (default: the preset's or the model's)")
    size.add_argument("--hidden", type=int, help="hidden size; heads and intermediate follow (hidden/64, "
                                                 "4 x hidden) unless given")
    size.add_argument("--heads", type=int, help="attention heads")
    size.add_argument("--intermediate", type=int, help="feed-forward size")
    size.add_argument("--vocab-size", type=int, help="tokens in the vocabulary")
    size.add_argument("--max-positions", type=int, help="position table size (longest --seq-len allowed)")
    amount = parser.add_argument_group("token count (commas separate phases, e.g. --seq-len 128,512)")
    amount.add_argument("--tokens", help="token positions to train on: 3.3e9, 128B, 3.3G, 500M, 20k")
    amount.add_argument("--steps", help="optimizer steps (with --batch-size)")
    amount.add_argument("--batch-size", help="sequences per step, all devices together")
    amount.add_argument("--seq-len", help="sequence length (default: 128)")
    amount.add_argument("--mlm-fraction", type=float, default=DEFAULT_MLM_FRACTION,
                        help="share of positions the MLM decoder runs on (1 for implementations that decode all)")
    hardware = parser.add_argument_group("devices, time and price")
    hardware.add_argument("--device", help=f"one of {', '.join(DEVICES)} (default: h100; with --measure, this machine)")
    hardware.add_argument("--devices", type=int, default=1, help="how many devices train together")
    hardware.add_argument("--peak-tflops", type=float, help="dense peak per device, for a device not in the table")
    hardware.add_argument("--utilization", type=float, default=DEFAULT_UTILIZATION,
                          help="share of the peak turned into model FLOPs")
    hardware.add_argument("--hours", type=float, help="known wall-clock duration: cost = devices x hours x price")
    hardware.add_argument("--price", help="per device-hour: 4.50, or a range 4.50-8.00")
    hardware.add_argument("--measure", action="store_true",
                          help="time real training steps here (cuda if available, else cpu) instead of the datasheet")
    hardware.add_argument("--measure-steps", type=COUNT, default=5, help="with --measure: timed steps, after 2 "
                                                                       "warm-up steps")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    """Plan the run's phases, time them (given, measured or from the datasheet) and print the estimate."""
    from bertforge.apps import estimate

    config = estimate.build_config(args.preset, args.model, layers=args.layers, hidden=args.hidden,
                                   heads=args.heads, intermediate=args.intermediate,
                                   vocab_size=args.vocab_size, max_positions=args.max_positions)
    phases = estimate.plan_phases(config, args.tokens, args.steps, args.batch_size, args.seq_len)
    # Everything cheap is checked before --measure spends its seconds.
    price = estimate.parse_price(args.price) if args.price is not None else None
    device = estimate.resolve_device(args.device, args.peak_tflops, measuring=args.measure)
    rates = how = None
    if args.measure:
        rates, how = estimate.measure_phases(config, phases, args.devices, args.batch_size, args.measure_steps,
                                             args.hours, args.mlm_fraction)
    result = estimate.estimate_run(config, phases or None, device=device, devices=args.devices,
                                   utilization=args.utilization, price=price, hours=args.hours,
                                   mlm_fraction=args.mlm_fraction, tokens_per_second=rates,
                                   name=args.model or args.preset or "base")
    if args.json:
        print(json.dumps({**result.to_dict(), "measurement": how}, indent=2))
    else:
        print(estimate.format_estimate(result, how))
    return 0
