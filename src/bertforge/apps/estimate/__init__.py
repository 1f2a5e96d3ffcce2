"""What a BERT pretraining run costs: FLOPs, device-hours, wall-clock hours and money.

Three ways to get the time, from least to most known:

- **datasheet**: training FLOPs / (devices x dense peak x assumed utilisation);
- **measured** (``--measure``): a few real training steps on this machine give
  tokens per second per device; the run is assumed to scale linearly with devices;
- **hours given** (``--hours``): the duration is known, so cost = devices x hours x
  price, and the token count (when given) tells what utilisation that implies.

Training FLOPs are 3 x the forward FLOPs per token x tokens: the matrix products
of the encoder, the attention scores and the masked-LM decoder on the 15% of
positions that carry a label; :func:`bertforge.model.flops.forward_flops_per_token`
lists what is and is not counted.

The seed article's arithmetic: BERT-Large was pretrained on 16 Cloud TPU devices
(64 chips) for about four days; at $4.50-$8.00 per device-hour (the range matches
the on-demand hourly prices then listed for a Cloud TPU v2 and a v3 device) that is
16 x 96 x $4.50-$8.00 = $6,912-$12,288. The original recipe (Devlin et al., 2018)
was 1,000,000 steps of 256 sequences, 90% of the steps at length 128 and 10% at
512. Here it is modelled as two phases of token positions (padding included), each
with its own attention length: 256 x (900,000 x 128 + 100,000 x 512) = 42.6 billion.
On TPU v3 devices the four days imply a few percent of the datasheet peak (on v2
devices, about 2.3 times that):

>>> from bertforge.cli.app import main
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

One job a module: ``devices`` (the table of peaks), ``parse`` (counts and prices),
``plan`` (the model and its phases), ``cost`` (the estimate), ``measure`` (timed
steps here) and ``report`` (the printed table); the FLOP count is
:mod:`bertforge.model.flops`. Their public names are all importable from here.
"""


from bertforge.apps.estimate.cost import DEFAULT_UTILIZATION, Estimate, estimate_run
from bertforge.apps.estimate.devices import DEVICES, Device, detect_device, get_device, resolve_device
from bertforge.apps.estimate.measure import measure_phases, measure_tokens_per_second
from bertforge.apps.estimate.parse import parse_count, parse_price
from bertforge.apps.estimate.plan import DEFAULT_SEQ_LEN, Phase, build_config, plan_phases
from bertforge.apps.estimate.report import format_count, format_estimate
from bertforge.model.flops import (
    DEFAULT_MLM_FRACTION,
    forward_flops_per_token,
    pretraining_parameters,
    training_flops_per_token,
)

__all__ = [
    "Device", "DEVICES", "DEFAULT_UTILIZATION", "DEFAULT_MLM_FRACTION", "DEFAULT_SEQ_LEN", "Estimate", "Phase", "build_config",
    "detect_device", "estimate_run", "format_count", "format_estimate", "forward_flops_per_token", "get_device",
    "measure_phases", "measure_tokens_per_second", "parse_count", "parse_price", "plan_phases",
    "pretraining_parameters", "resolve_device", "training_flops_per_token",
]
