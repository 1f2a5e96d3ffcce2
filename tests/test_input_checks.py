"""Input read and checked from Python: long CSV texts, missing and non-finite labels, encodings,
deep JSON, and the settings checked before any work."""

from __future__ import annotations

import math

import pytest

from bertforge.data.labeled import LabelEncoder, detect_task, read_labeled, validate_training_labels
from bertforge.errors import UsageError
from file_helpers import error_of, write


# ---------------------------------------------------------------- long texts in CSV


def test_a_text_longer_than_the_csv_field_limit_is_read(tmp_path):
    long = "word " * 60_000  # 300,000 characters: above csv's default limit of 131,072
    path = write(tmp_path, "long.csv", f'text,label\n"{long}",a\nshort,b\n')
    data = read_labeled(path)
    assert data.texts[0] == long and data.labels == ["a", "b"]


def test_a_long_tab_separated_text_is_read(tmp_path):
    long = "x" * 200_000
    path = write(tmp_path, "long.tsv", f"text\tlabel\n{long}\ta\nshort\tb\n")
    assert len(read_labeled(path).texts[0]) == 200_000


def test_an_unclosed_quote_before_a_long_text_still_names_the_quote(tmp_path):
    long = "y" * 200_000
    path = write(tmp_path, "train.csv", f'text,label\n"never closed,a\n{long},b\nc,a\n')
    message = error_of(read_labeled, path)
    assert str(path) in message and "line 2" in message and "never closed" in message


# ---------------------------------------------------------------- the columns used


def test_guessed_columns_are_noted(tmp_path):
    data = read_labeled(write(tmp_path, "train.csv", "id,sentence,category\n1,hi there,a\n2,bye,b\n"))
    assert data.notes == [f"{tmp_path / 'train.csv'}: text: 'sentence', label: 'category' "
                          "(guessed; --text-column and --label-column override)"]


def test_only_the_guessed_columns_are_noted_and_given_ones_are_not(tmp_path):
    path = write(tmp_path, "train.csv", "review,stars\nfine,4\nbad,1\n")
    assert read_labeled(path, text_column="review", label_column="stars").notes == []
    assert read_labeled(path, text_column="review").notes == [
        f"{path}: text: 'review', label: 'stars' (label guessed; --label-column overrides)"]


def test_headerless_and_in_memory_columns_are_noted_by_position():
    data = read_labeled([("great film", "pos"), ("dull", "neg")])
    assert data.notes == ["<list of 2 rows>: text: column 0, label: column 1 "
                          "(guessed; text_column= and label_column= override)"]


# ---------------------------------------------------------------- missing labels


@pytest.mark.parametrize("missing", ["", "n/a", "N/A", "nan", "NaN", "null", "\x00", " \x00 "])
def test_a_missing_label_names_its_line_and_the_flag(tmp_path, missing):
    path = write(tmp_path, "train.csv", f"text,label\na,x\nb,{missing}\nc,y\n")
    message = error_of(read_labeled, path)
    assert message.startswith(f"{path}: line 3: the label (column 'label') is missing"), message
    assert "--drop-missing-labels" in message


def test_missing_labels_name_every_line(tmp_path):
    path = write(tmp_path, "train.csv", "text,label\na,x\nb,n/a\nc,y\nd,\ne,nan\n")
    message = error_of(read_labeled, path)
    assert message.startswith(f"{path}: lines 3, 5 and 6: the label (column 'label') is missing"), message
    assert "--drop-missing-labels" in message


def test_drop_missing_labels_skips_them_with_a_note(tmp_path):
    # Real label sets have a "none" class (intents) and an "NA" one (regions): those are kept.
    path = write(tmp_path, "train.csv", "text,label\na,x\nb,n/a\nc,none\nd,\ne,\x00\nf,NA\n")
    data = read_labeled(path, drop_missing_labels=True)
    assert data.texts == ["a", "c", "f"] and data.labels == ["x", "none", "NA"] and data.lines == [2, 4, 7]
    assert data.notes[-1] == f"{path}: skipped 3 rows without a label (lines 3, 5 and 6)"


def test_drop_missing_labels_in_memory_counts_rows():
    rows = [{"text": "a", "label": "x"}, {"text": "b", "label": None}, {"text": "c", "label": "y"}]
    data = read_labeled(rows, drop_missing_labels=True)
    assert data.labels == ["x", "y"]
    assert data.notes[-1] == "<list of 3 rows>: skipped 1 row without a label (row 1)"
    assert "drop_missing_labels=True" in error_of(read_labeled, rows)


def test_a_json_null_or_nan_label_is_missing(tmp_path):
    path = write(tmp_path, "train.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": NaN}\n'
                                          '{"text": "c", "label": null}\n{"text": "d", "label": "y"}\n')
    assert error_of(read_labeled, path).startswith(f"{path}: lines 2 and 3: the label (column 'label') is missing")
    assert read_labeled(path, drop_missing_labels=True).labels == ["x", "y"]


# ---------------------------------------------------------------- numbers that are not finite


def test_numeric_labels_with_infinities_name_those_lines(tmp_path):
    rows = "".join(f"t{i},{i * 0.37:.2f}\n" for i in range(40))
    path = write(tmp_path, "train.csv", "text,score\n" + rows + "u,inf\nv,-Infinity\n")
    message = error_of(lambda: LabelEncoder.fit(read_labeled(path)))
    assert "look like texts" not in message
    assert "lines 42 and 43" in message and "not a finite number" in message and "'inf'" in message, message


def test_integer_labels_with_an_infinity_are_not_a_class_named_inf():
    labels = ["1", "2", "3", "inf", "2"]
    message = error_of(validate_training_labels, labels)
    assert "item 3" in message and "not a finite number" in message


def test_numbers_with_missing_values_in_a_plain_list_say_missing():
    message = error_of(validate_training_labels, ["0.5", "1.5", "n/a", "2.5"])
    assert "item 2" in message and "missing" in message and "look like texts" not in message


def test_regression_given_names_a_non_finite_label(tmp_path):
    path = write(tmp_path, "train.csv", "text,score\na,0.5\nb,inf\nc,1.5\n")
    message = error_of(lambda: LabelEncoder.fit(read_labeled(path), task="regression"))
    assert "line 3" in message and "not a finite number" in message


# ---------------------------------------------------------------- the label separator


def test_an_empty_label_separator_is_refused():
    assert "label_separator" in error_of(detect_task, ["a|b", "b"], label_separator="")
    assert "label_separator" in error_of(LabelEncoder.fit, ["a|b", "b"], label_separator="")


# ---------------------------------------------------------------- encodings and JSON


@pytest.mark.parametrize("encoding, named", [("utf-16", "utf-16"), ("utf-16-le", "utf-16le"),
                                             ("utf-16-be", "utf-16be")])
def test_a_utf16_file_is_named_as_such_and_latin1_keeps_its_advice(tmp_path, encoding, named):
    path = write(tmp_path, "train.csv", "text,label\nhello there,a\nbye now,b\n".encode(encoding))
    message = error_of(read_labeled, path)
    assert str(path) in message and "UTF-16" in message and "latin" not in message, message
    assert f"iconv -f {named} -t utf-8" in message
    latin = write(tmp_path, "latin.csv", "text,label\nfine,a\n".encode() + "caf\u00e9,b\n".encode("latin-1"))
    message = error_of(read_labeled, latin)
    assert "line 3" in message and "iconv -f latin1" in message


def test_a_utf16_tagged_file_is_named_as_such(tmp_path):
    from bertforge.data.tagged import read_tagged

    path = write(tmp_path, "train.conll", "Hi O\nPete B-PER\n\n".encode("utf-16"))
    assert "UTF-16" in error_of(read_tagged, path)


@pytest.mark.parametrize("depth", [1200, 100_000])
def test_deeply_nested_json_lines_are_one_line(tmp_path, depth):
    path = write(tmp_path, "train.jsonl", '{"text": "hi", "label": "a"}\n'
                                          '{"text": "yo", "label": ' + "[" * depth + "]" * depth + "}\n")
    message = error_of(read_labeled, path)
    assert str(path) in message and "line 2" in message and "nested" in message


def test_a_nested_list_label_is_refused(tmp_path):
    path = write(tmp_path, "train.jsonl", '{"text": "hi", "label": ["a"]}\n{"text": "yo", "label": [["b"]]}\n')
    message = error_of(read_labeled, path)
    assert "line 2" in message and "list" in message


def test_deeply_nested_json_for_tagging_and_questions_is_one_line(tmp_path):
    from bertforge.data.questions import read_questions
    from bertforge.data.tagged import read_tagged

    deep = "[" * 5000 + "]" * 5000
    tagged = write(tmp_path, "tags.jsonl", '{"tokens": ["Hi"], "tags": ' + deep + "}\n")
    assert "nested" in error_of(read_tagged, tagged)
    squad = write(tmp_path, "squad.json", '{"data": ' + deep + "}\n")
    assert "nested" in error_of(read_questions, squad)
    rows = write(tmp_path, "qa.jsonl", '{"question": "q", "context": "c", "answers": ' + deep + "}\n")
    assert "nested" in error_of(read_questions, rows)


def test_questions_sniffing_survives_deep_json(tmp_path):
    from bertforge.data.questions.read import looks_like_questions

    path = write(tmp_path, "deep.jsonl", '{"question": ' + "[" * 5000 + "]" * 5000 + "}\n")
    assert looks_like_questions(path) is False


# ---------------------------------------------------------------- settings, before any work


def finetune_settings(**options):
    from bertforge.apps.finetune import FineTuneSettings

    return FineTuneSettings.of(train="missing.csv", model="no-model", out="no-out", **options)


def pretrain_settings(**options):
    from bertforge.apps.pretrain import PretrainSettings

    return PretrainSettings.of(corpus=["missing.txt"], vocab="no-vocab", out="no-out", **options)


NAN = math.nan


@pytest.mark.parametrize("options, flag", [
    ({"learning_rate": NAN}, "--learning-rate"),
    ({"learning_rate": math.inf}, "--learning-rate"),
    ({"weight_decay": NAN}, "--weight-decay"),
    ({"weight_decay": -0.1}, "--weight-decay"),
    ({"max_grad_norm": NAN}, "--max-grad-norm"),
    ({"max_grad_norm": -1.0}, "--max-grad-norm"),
    ({"warmup_ratio": -0.1}, "--warmup-ratio"),
    ({"warmup_ratio": 1.5}, "--warmup-ratio"),
    ({"warmup_ratio": NAN}, "--warmup-ratio"),
    ({"checkpoint_every": -5}, "--checkpoint-every"),
    ({"checkpoint_every": 0}, "--checkpoint-every"),
    ({"early_stopping_patience": 0}, "--early-stopping"),
    ({"early_stopping_patience": -1}, "--early-stopping"),
    ({"eval_every": -1}, "--eval-every"),
    ({"max_steps": 0}, "--max-steps"),
    ({"seed": -1}, "--seed"),
    ({"time_budget": NAN}, "--time-budget"),
    ({"log_every": 0}, "--log-every"),
    ({"layerwise_lr_decay": NAN}, "--layerwise-lr-decay"),
    ({"layerwise_lr_decay": 0.0}, "--layerwise-lr-decay"),
    ({"layerwise_lr_decay": 1.5}, "--layerwise-lr-decay"),
    ({"val_fraction": NAN}, "--val-fraction"),
    ({"label_separator": ""}, "--label-separator"),
    ({"fine_tune_layers": -1}, "--fine-tune-layers"),
    ({"n_best": 0}, "--n-best"),
    ({"max_answer_length": 0}, "--max-answer-length"),
    ({"null_threshold": NAN}, "--null-threshold"),
    ({"stride": 0}, "--stride"),
    ({"frozen_cache_limit_gb": NAN}, "--frozen-cache-limit-gb"),
    ({"learning_rate": "fast"}, "--learning-rate"),
])
def test_finetune_settings_are_checked_in_the_constructor(options, flag):
    with pytest.raises(UsageError) as caught:
        finetune_settings(**options)
    message = str(caught.value)
    assert message.startswith(f"{flag} must be ") and "\n" not in message, message
    assert ", got " in message


@pytest.mark.parametrize("options, flag", [
    ({"max_steps": 0}, "--max-steps"),
    ({"batch_size": 0}, "--batch-size"),
    ({"mask_rate": 1.5}, "--mask-rate"),
    ({"mask_rate": NAN}, "--mask-rate"),
    ({"pair_rate": -0.5}, "--pair-rate"),
    ({"held_out": 1.0}, "--held-out"),
    ({"seq_len": 4}, "--seq-len"),
    ({"layers": 0}, "--layers"),
    ({"hidden": -8}, "--hidden"),
    ({"dropout": 1.0}, "--dropout"),
    ({"workers": 0}, "--workers"),
    ({"learning_rate": NAN}, "--learning-rate"),
    ({"eval_every": -3}, "--eval-every"),
])
def test_pretrain_settings_are_checked_in_the_constructor(options, flag):
    with pytest.raises(UsageError) as caught:
        pretrain_settings(**options)
    assert str(caught.value).startswith(f"{flag} must be "), str(caught.value)


def test_good_settings_still_pass():
    settings = finetune_settings(learning_rate=1e-4, warmup_ratio=0.0, max_grad_norm=None, layerwise_lr_decay=0.9,
                                 label_separator="|", checkpoint_every=10, early_stopping_patience=2,
                                 drop_missing_labels=True)
    assert settings.training.learning_rate == 1e-4 and settings.drop_missing_labels
    assert "drop_missing_labels" in settings.to_dict()
    assert pretrain_settings(max_steps=1, mask_rate=0.15, dropout=0.0).training.max_steps == 1
