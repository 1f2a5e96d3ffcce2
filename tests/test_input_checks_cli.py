"""Input checks through the command line: bad option values exit 2 before any work, the columns
and skipped rows of a fine-tuning run are said, and vocab and fill-mask refuse what they cannot use."""

from __future__ import annotations

import pytest

from bertforge.cli.app import main


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(value) for value in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# ---------------------------------------------------------------- option values: exit 2, before any work


@pytest.mark.parametrize("option, value", [
    ("--learning-rate", "nan"), ("--learning-rate", "inf"), ("--weight-decay", "nan"), ("--max-grad-norm", "nan"),
    ("--layerwise-lr-decay", "nan"), ("--warmup-ratio", "-0.1"), ("--checkpoint-every", "-5"),
    ("--early-stopping", "0"), ("--early-stopping", "-2"), ("--val-fraction", "nan"), ("--label-separator", ""),
    ("--batch-size", "0"), ("--seed", "-1"),
])
def test_finetune_refuses_a_bad_value_before_reading(tmp_path, capsys, option, value):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "finetune", "--train", tmp_path / "absent.csv", "--model", tmp_path / "absent",
                           "--out", out, option, value)
    line = one_line(err)
    assert code == 2, err
    assert line.startswith(f"bertforge: error: {option} must be ") and ", got " in line, line
    assert not out.exists()  # no work done: not even the output folder


@pytest.mark.parametrize("option, value", [
    ("--max-steps", "0"), ("--max-steps", "-1"), ("--batch-size", "0"), ("--mask-rate", "0"), ("--mask-rate", "1.5"),
    ("--mask-rate", "nan"), ("--eval-every", "-1"), ("--checkpoint-every", "-1"), ("--learning-rate", "nan"),
    ("--warmup-ratio", "2"), ("--held-out", "1"), ("--pair-rate", "-0.1"),
])
def test_pretrain_refuses_a_bad_value_before_tokenizing(tmp_path, capsys, option, value):
    out = tmp_path / "bert"
    code, _, err = run_cli(capsys, "pretrain", tmp_path / "absent.txt", "--vocab", tmp_path / "no-vocab",
                           "--out", out, option, value)
    line = one_line(err)
    assert code == 2, err
    assert line.startswith(f"bertforge: error: {option} must be "), line
    assert not out.exists()


def test_a_bad_value_exits_2_where_a_failed_job_exits_1(tmp_path, capsys):
    argv = ["finetune", "--train", tmp_path / "absent.csv", "--model", tmp_path / "m", "--out", tmp_path / "run"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 1 and "no such file" in one_line(err)
    code, _, err = run_cli(capsys, *argv, "--epochs", "0")
    assert code == 2 and one_line(err) == "bertforge: error: --epochs must be a whole number of at least 1, got 0"


# ---------------------------------------------------------------- what a fine-tuning run read


def test_finetune_says_which_columns_it_guessed_and_which_rows_it_skipped(minilm_dir, tmp_path, capsys):
    rows = ["id,sentence,category"] + [f"{i},what is {w} ?,DESC" for i, w in enumerate(("love", "a cat", "rain"))] + \
           [f"{i + 3},who is {w} ?,HUM" for i, w in enumerate(("Poe", "Ann", "the king"))] + ["7,who knows ?,n/a"]
    train = tmp_path / "train.csv"
    train.write_text("\n".join(rows) + "\n", encoding="utf-8")
    argv = ["finetune", "--train", train, "--model", minilm_dir, "--out", tmp_path / "model", "--epochs", "1",
            "--batch-size", "3", "--fine-tune-layers", "1", "--val-fraction", "0"]
    code, _, err = run_cli(capsys, *argv)
    line = one_line(err)
    assert code == 1 and "line 8" in line and "--drop-missing-labels" in line, err

    code, _, err = run_cli(capsys, *argv, "--drop-missing-labels")
    assert code == 0, err
    assert (f"{train}: text: 'sentence', label: 'category' (guessed; --text-column and --label-column override)"
            in err.splitlines()), err
    assert f"{train}: skipped 1 row without a label (line 8)" in err.splitlines(), err


# ---------------------------------------------------------------- vocab and fill-mask


def test_vocab_on_a_binary_file_names_the_file(tmp_path, capsys):
    text = tmp_path / "ok.txt"
    text.write_text("the cat sat on the mat\n" * 20, encoding="utf-8")
    binary = tmp_path / "image.bin"
    binary.write_bytes(bytes(range(256)) * 40)
    code, _, err = run_cli(capsys, "vocab", text, binary, "--vocab-size", "60", "--out", tmp_path / "v", "--quiet")
    line = one_line(err)
    assert code == 1 and str(binary) in line and "Exception" not in line, line


def test_vocab_on_a_latin1_file_names_the_file_and_line(tmp_path, capsys):
    latin = tmp_path / "latin.txt"
    latin.write_bytes("the cat\nthe caf\u00e9 sat\n".encode("latin-1"))
    code, _, err = run_cli(capsys, "vocab", latin, "--vocab-size", "60", "--out", tmp_path / "v", "--quiet")
    line = one_line(err)
    assert code == 1 and str(latin) in line and "line 2" in line and "0xe9" in line, line


def test_vocab_on_a_utf16_file_says_utf16(tmp_path, capsys):
    wide = tmp_path / "wide.txt"
    wide.write_bytes("the cat sat on the mat\n".encode("utf-16"))
    code, _, err = run_cli(capsys, "vocab", wide, "--vocab-size", "60", "--out", tmp_path / "v", "--quiet")
    line = one_line(err)
    assert code == 1 and str(wide) in line and "UTF-16" in line and "iconv -f utf-16" in line, line


def test_fill_mask_refuses_a_model_without_a_masked_lm_head(minilm_dir, capsys):
    code, out, err = run_cli(capsys, "fill-mask", "--model", minilm_dir, "the [MASK] sat on the mat")
    line = one_line(err)
    assert code == 1 and out == "", out
    assert str(minilm_dir) in line and "masked-LM head" in line, line
