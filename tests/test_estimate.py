"""bertforge estimate: the FLOPs, time and cost of a pretraining run."""

import json
import math
import re

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from bertforge import BertConfig, BertForPreTraining, BertforgeError
from bertforge.cli.app import main
from bertforge.apps.estimate import Phase, estimate_run, measure_tokens_per_second, parse_count, parse_price
from bertforge.model.bert import count_parameters
from bertforge.model.flops import (
    forward_flops_per_token,
    model_flops_per_token,
    pretraining_parameters,
    training_flops_per_token,
)

# 16 Cloud TPU devices x 96 hours x $4.50-$8.00, the seed article's figures.
SEED = ["estimate", "--preset", "large", "--device", "tpu-v3", "--devices", "16", "--hours", "96",
        "--price", "4.50-8.00"]
# Devlin et al.: 1,000,000 steps of 256 sequences, 90% at length 128, 10% at 512.
DEVLIN = ["--steps", "900000,100000", "--batch-size", "256", "--seq-len", "128,512"]

SMALL = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                   intermediate_size=64)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def table(out: str) -> dict[str, str]:
    """The printed table as {label: value}; labels are single words."""
    return dict(line.split(None, 1) for line in out.strip().splitlines())


# -- the seed arithmetic -------------------------------------------------------------


def test_seed_article_cost_from_the_command_line(capsys):
    code, out, err = run(capsys, *SEED)
    assert code == 0 and err == ""
    rows = table(out)
    assert rows["cost"] == "$6,912 - $12,288"
    assert rows["device-hours"] == "1,536"
    assert rows["price"] == "$4.50 - $8.00 per device-hour"
    assert "FLOPs" not in rows  # no token count given: nothing to say about FLOPs


def test_seed_article_with_the_original_recipe_implies_flops_and_utilisation(capsys):
    code, out, _ = run(capsys, *SEED, *DEVLIN, "--json")
    assert code == 0
    result = json.loads(out)
    assert result["tokens"] == 256 * (900_000 * 128 + 100_000 * 512) == 42_598_400_000
    assert result["cost"] == [6912.0, 12288.0]
    expected_flops = (256 * 900_000 * 128 * training_flops_per_token(BertConfig.preset("large"), 128)
                      + 256 * 100_000 * 512 * training_flops_per_token(BertConfig.preset("large"), 512))
    assert result["flops"] == pytest.approx(expected_flops)
    assert result["utilization"] == pytest.approx(expected_flops / (16 * 420e12 * 96 * 3600))
    assert result["tokens_per_second"] == pytest.approx(42_598_400_000 / (96 * 3600))

    code, out, _ = run(capsys, *SEED, *DEVLIN)
    rows = table(out)
    assert rows["cost"] == "$6,912 - $12,288"
    assert rows["tokens"] == "42.6B = 900,000 steps x 256 x 128 + 100,000 steps x 256 x 512"
    assert rows["utilisation"].startswith(f"{result['utilization']:.1%} of peak")


def test_the_help_example_reproduces_the_seed_figures(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["estimate", "--help"])
    assert exit_info.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "$6,912-$12,288" in help_text
    example = re.search(r"\): bertforge (estimate .*?--price \S+)", help_text).group(1).split()
    code, out, _ = run(capsys, *example)
    assert code == 0
    assert table(out)["cost"] == "$6,912 - $12,288"


# -- counting ------------------------------------------------------------------------


def test_flops_per_token_matches_a_hand_count():
    # hidden 32, intermediate 64, 2 layers, vocabulary 100, length 16, per token:
    #   q, k, v, output projections   4 x 2 x 32 x 32 = 8192
    #   feed-forward                  2 x 2 x 32 x 64 = 8192
    #   scores + weighted values      2 x 2 x 16 x 32 = 2048
    #   two layers                    2 x 18432       = 36864
    #   MLM head on 15%: 0.15 x (2 x 32 x 32 + 2 x 32 x 100) = 0.15 x 8448 = 1267.2
    assert forward_flops_per_token(SMALL, 16) == pytest.approx(38131.2)
    assert training_flops_per_token(SMALL, 16) == pytest.approx(3 * 38131.2)
    assert training_flops_per_token(SMALL, 16, mlm_fraction=1.0) == pytest.approx(3 * (36864 + 8448))
    assert training_flops_per_token(SMALL, 16, mlm_fraction=0.0) == model_flops_per_token(SMALL, 16)


def test_flops_per_token_matches_what_the_model_actually_multiplies():
    # With labels the model skips work the formula counts (the last layer and the
    # decoder run only at labelled tokens), so the count is checked on a pass
    # without labels, which computes every position: the formula at mlm_fraction 1.
    model = BertForPreTraining(SMALL).eval()
    ids = torch.randint(1, 100, (2, 20), generator=torch.Generator().manual_seed(0))
    # The math kernel runs attention as matrix products the counter sees.
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(ids)
    pooler_and_next_sentence = 2 * (2 * 32 * 32 + 2 * 32 * 2)  # once per sequence, left out of the formula
    assert counter.get_total_flops() == pytest.approx(
        2 * 20 * forward_flops_per_token(SMALL, 20, mlm_fraction=1.0) + pooler_and_next_sentence)


def test_labelled_tokens_only_cost_less_than_the_model_flops():
    model = BertForPreTraining(SMALL).eval()
    ids = torch.randint(1, 100, (2, 20), generator=torch.Generator().manual_seed(0))
    labels = torch.full_like(ids, -100)
    labels[:, [2, 5, 9]] = ids[:, [2, 5, 9]]  # 3 of 20 positions: the 15% the formula assumes
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(ids, masked_lm_labels=labels)
    assert counter.get_total_flops() < 2 * 20 * forward_flops_per_token(SMALL, 20)


def test_parameter_count_matches_the_model():
    assert pretraining_parameters(SMALL) == count_parameters(BertForPreTraining(SMALL))
    odd = BertConfig(vocab_size=77, hidden_size=24, num_hidden_layers=3, num_attention_heads=2,
                     intermediate_size=40, max_position_embeddings=64, type_vocab_size=3)
    assert pretraining_parameters(odd) == count_parameters(BertForPreTraining(odd))


@pytest.mark.parametrize("text, value", [
    ("128B", 128e9), ("3.3G", 3.3e9), ("500M", 500e6), ("20k", 20e3), ("3.3e9", 3.3e9), ("2T", 2e12),
    ("1_000_000", 1e6), (" 7 ", 7.0), ("1.5b", 1.5e9),
])
def test_parse_count(text, value):
    assert parse_count(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["12X", "", "B", "-5", "0", "inf", "nan", "1,000"])
def test_parse_count_rejects(text):
    with pytest.raises(BertforgeError, match="count"):
        parse_count(text)


def test_parse_price():
    assert parse_price("4.50-8.00") == (4.5, 8.0)
    assert parse_price("$4.50-$8.00") == (4.5, 8.0)
    assert parse_price("2.49") == (2.49, 2.49)
    for bad in ("4.50-", "8-4.5", "abc", "1-2-3", "0"):
        with pytest.raises(BertforgeError, match="price"):
            parse_price(bad)


# -- time and cost -------------------------------------------------------------------


def test_hours_scale_inversely_with_devices_and_utilization():
    config = BertConfig.preset("base")
    one = estimate_run(config, 1e10, device="h100", devices=1, utilization=0.4, price=(2.0, 3.0))
    flops = 1e10 * training_flops_per_token(config, 128)
    assert one.flops == pytest.approx(flops)
    assert one.hours == pytest.approx(flops / (989e12 * 0.4) / 3600)

    four = estimate_run(config, 1e10, device="h100", devices=4, utilization=0.4, price=(2.0, 3.0))
    assert four.hours == pytest.approx(one.hours / 4)
    assert four.device_hours == pytest.approx(one.device_hours)  # same work, same bill
    assert four.cost == pytest.approx(one.cost)

    slower = estimate_run(config, 1e10, device="h100", devices=1, utilization=0.2)
    assert slower.hours == pytest.approx(one.hours * 2)
    assert estimate_run(config, 1e10, device="a100").hours == pytest.approx(one.hours * 989 / 312)


def test_phases_count_each_length_with_its_own_attention_cost():
    config = BertConfig.preset("large")
    mixed = estimate_run(config, [Phase(3e9, 128), Phase(1e9, 512)], device="h100")
    assert mixed.tokens == 4e9
    assert mixed.flops == pytest.approx(3e9 * training_flops_per_token(config, 128)
                                        + 1e9 * training_flops_per_token(config, 512))


def test_given_hours_set_the_cost_whatever_the_device():
    run_ = estimate_run(BertConfig.preset("large"), None, device="tpu-v2", devices=16, hours=96, price="4.50-8.00")
    assert run_.basis == "hours" and run_.flops is None and run_.utilization is None
    assert run_.cost == (6912.0, 12288.0)


def test_model_directory_and_size_overrides(tmp_path, capsys):
    BertConfig.preset("mini", vocab_size=8000).save(tmp_path)
    code, out, _ = run(capsys, "estimate", "--model", str(tmp_path), "--tokens", "1B", "--json")
    assert code == 0
    model = json.loads(out)["model"]
    assert (model["layers"], model["hidden"], model["vocab_size"]) == (4, 256, 8000)

    code, out, _ = run(capsys, "estimate", "--preset", "base", "--hidden", "512", "--layers", "6", "--tokens", "1B",
                       "--json")
    model = json.loads(out)["model"]
    assert (model["layers"], model["hidden"], model["heads"], model["intermediate"]) == (6, 512, 8, 2048)


# -- measuring -----------------------------------------------------------------------


def test_measure_a_tiny_model():
    rate = measure_tokens_per_second(BertConfig.preset("tiny"), batch_size=2, seq_len=32, steps=1, device="cpu")
    assert rate > 0 and math.isfinite(rate)


TINY_MEASURED = ["estimate", "--preset", "tiny", "--tokens", "1M", "--seq-len", "32", "--measure",
                 "--measure-steps", "1"]


def test_measure_from_the_command_line_uses_the_measured_rate(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # timed on the CPU, whatever the machine
    code, out, err = run(capsys, *TINY_MEASURED, "--batch-size", "4", "--devices", "2", "--peak-tflops", "2",
                         "--json")
    assert code == 0, err
    result = json.loads(out)
    rate = result["measured"]["32"]
    assert result["basis"] == "measured" and rate > 0
    assert result["hours"] == pytest.approx(1e6 / (2 * rate) / 3600)  # linear in devices
    assert result["utilization"] == pytest.approx(rate * result["flops_per_token"] / 2e12)
    assert "batch 2 x 32 per device" in result["measurement"]  # the global batch of 4, split over 2

    code, out, _ = run(capsys, *TINY_MEASURED, "--batch-size", "2", "--peak-tflops", "2")
    rows = table(out)
    assert rows["measured"].startswith("tokens/s per device: ")
    assert rows["device"] == "1 x cpu: peak from --peak-tflops, 2 TFLOP/s fp32 dense peak each"
    assert re.fullmatch(r"\d+\.\d% of the 2 TFLOP/s fp32 dense peak, implied by the measurement", rows["utilisation"])


def test_measure_on_a_cpu_prints_no_peak_guess_and_no_utilisation(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, out, err = run(capsys, *TINY_MEASURED)
    assert code == 0, err
    rows = table(out)
    # The CPU's 1 TFLOP/s is a placeholder for datasheet estimates; a measured run is not compared with it.
    assert rows["device"] == ("1 x cpu: timed on this machine; no datasheet peak, so no utilisation "
                              "(give one with --peak-tflops)")
    assert "utilisation" not in rows and "TFLOP/s" not in out and "guess" not in out
    rate = rows["measured"].removeprefix("tokens/s per device: ").split(" at length 32")[0]
    assert rows["throughput"] == f"{rate} tokens/s, measured, assuming it scales linearly with devices"
    code, out, _ = run(capsys, *TINY_MEASURED, "--json")
    result = json.loads(out)
    assert result["utilization"] is None and result["peak_known"] is False
    assert result["hours"] == pytest.approx(1e6 / result["measured"]["32"] / 3600)


# -- bad input -----------------------------------------------------------------------

BASE = ["estimate", "--preset", "base", "--tokens", "1B"]


@pytest.mark.parametrize("argv, fragment", [
    (BASE + ["--device", "mi300"], "unknown device 'mi300'; use one of h100, h200, a100, v100, t4, tpu-v2"),
    (BASE + ["--price", "4.50-"], "price '4.50-'"),
    (BASE + ["--price", "8-4.50"], "runs backwards"),
    (BASE + ["--price", "cheap"], "price 'cheap'"),
    (["estimate", "--preset", "base", "--tokens", "12X"], "--tokens '12X' is not a number"),
    (["estimate", "--preset", "base", "--tokens", "0"], "--tokens '0' must be a positive"),
    (["estimate", "--preset", "base", "--tokens", "-5"], "--tokens '-5' must be a positive"),
    (["estimate", "--preset", "base", "--steps", "1x", "--batch-size", "8"], "--steps must be a positive whole"),
    (["estimate", "--preset", "base", "--steps", "2.5", "--batch-size", "8"], "--steps must be a positive whole"),
    (["estimate", "--preset", "base", "--steps", "1000"], "--steps needs --batch-size"),
    (BASE + ["--devices", "0"], "devices must be a positive whole number"),
    (BASE + ["--devices", "-2"], "devices must be a positive whole number"),
    (BASE + ["--hours", "-1"], "hours must be a positive number"),
    (BASE + ["--utilization", "0"], "utilization must be a positive number"),
    (BASE + ["--utilization", "1.5"], "at most 1"),
    (BASE + ["--seq-len", "1024"], "sequence length 1024 is above the model's 512 positions"),
    (BASE + ["--seq-len", "0"], "--seq-len must be a positive whole number"),
    (BASE + ["--layers", "0"], "--layers must be a positive whole number"),
    (BASE + ["--peak-tflops", "-3"], "--peak-tflops must be a positive number"),
    (["estimate", "--preset", "huge", "--tokens", "1B"], "invalid choice: 'huge'"),
    (["estimate", "--preset", "base"], "give the token count"),
    (["estimate", "--preset", "base", "--steps", "10,20", "--batch-size", "8", "--seq-len", "128,256,512"],
     "has 2 values but another option has 3"),
    (BASE + ["--measure", "--hours", "5"], "not both"),
    (["estimate", "--preset", "base", "--measure"], "--measure needs the token count"),
])
def test_bad_input_is_one_line(capsys, argv, fragment):
    try:
        code, out, err = run(capsys, *argv)
    except SystemExit as exit:  # refused by the parser itself
        (out, err), code = capsys.readouterr(), exit.code
    assert code == 2  # every one of these is an option the estimate cannot use: bad usage
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("bertforge: error: ")
    assert "--debug" not in lines[0]  # a checked error, not a crash
    assert fragment in lines[0]
