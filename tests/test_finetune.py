"""Fine-tuning from labeled files: outputs, tasks, cache, resume, interop, CLI."""

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from bertforge.apps.predictor import Classifier
from bertforge.cli.app import main
from bertforge.apps.finetune import FineTuneSettings, SplitBatches, run_finetune
from bertforge.tasks.classification.task import ClassificationTask
from bertforge.tasks.classification.trainable import TrainableClassifier
from bertforge.text.long_text import LongText
from bertforge.training.frozen_cache import FrozenCache

QUESTIONS = {
    "HUM": ["Who wrote the poem ?", "Who was the first king ?", "Who invented the telephone ?",
            "Who painted this picture ?", "Who is the author of the book ?", "Who sang that song ?",
            "Who founded the company ?", "Who discovered the planet ?"],
    "LOC": ["Where is the river ?", "Where was the battle fought ?", "Where do penguins live ?",
            "Where is the capital city ?", "Where can I find the museum ?", "Where is the tallest tower ?",
            "Where did the ship sink ?", "Where are the mountains ?"],
    "NUM": ["How many legs does a spider have ?", "How far is the moon ?", "How old is the tree ?",
            "How many people live there ?", "How long is the bridge ?", "How much does it cost ?",
            "How tall is the statue ?", "How many days are in a year ?"],
}


def write_csv(path, rows, header="text,label"):
    lines = [header] + [",".join(f'"{cell}"' for cell in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture
def question_files(tmp_path):
    rows = [(text, label) for label, texts in QUESTIONS.items() for text in texts]
    random.Random(0).shuffle(rows)
    return write_csv(tmp_path / "train.csv", rows[:18]), write_csv(tmp_path / "test.csv", rows[18:])


def quick(minilm_dir, tmp_path, train, **overrides):
    values = dict(train=train, model=str(minilm_dir), out=str(tmp_path / "model"), epochs=2, batch_size=4,
                  learning_rate=1e-4, val_fraction=0.0, fine_tune_layers=1, progress=False)
    values.update(overrides)
    return FineTuneSettings.of(**values)


def test_finetune_writes_a_complete_model_directory(minilm_dir, tmp_path, question_files):
    train, test = question_files
    # Paths as Path objects, as Python callers pass them: the run must still write its bertforge.json.
    result = run_finetune(quick(minilm_dir, tmp_path, Path(train), test=Path(test), val_fraction=0.2, epochs=3,
                            out=tmp_path / "model"))
    out = tmp_path / "model"
    names = {path.name for path in out.iterdir()}
    assert {"config.json", "model.safetensors", "vocab.txt", "tokenizer.json", "tokenizer_config.json",
            "bertforge.json", "metrics.json", "report.md", "confusion_matrix.png", "log.jsonl"} <= names
    assert "checkpoint.pt" not in names and "best-model.safetensors" not in names
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["per_class"]) == {"HUM", "LOC", "NUM"}
    assert np.array(metrics["confusion_matrix"]).sum() == 6
    assert result["metrics"]["validation"]["num_examples"] >= 3
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "HUM", "1": "LOC", "2": "NUM"}
    # What the service reads to refuse text_pairs sent to a single-text model.
    assert json.loads((out / "bertforge.json").read_text())["text_pairs"] is False


def test_output_opens_in_transformers_with_the_same_predictions(minilm_dir, tmp_path, question_files):
    import transformers

    train, _ = question_files
    run_finetune(quick(minilm_dir, tmp_path, train))
    out = str(tmp_path / "model")
    texts = ["Who wrote The Raven ?", "Where is Baltimore ?", "How many poems did Poe write ?"]
    ours = Classifier.load(out).predict(texts)
    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(out).eval()
    with torch.no_grad():
        probabilities = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits.softmax(-1)
    for row, expected in zip(ours, probabilities):
        got = torch.tensor([row["probabilities"][model.config.id2label[i]] for i in range(3)])
        assert torch.allclose(got, expected, atol=1e-5)
        assert row["label"] == model.config.id2label[int(expected.argmax())]


def test_frozen_layer_cache_gives_the_same_logits(minilm_dir, question_files):
    from bertforge import BertForSequenceClassification, Tokenizer, load_pretrained
    from bertforge.data.labeled import LabelEncoder, read_labeled

    data = read_labeled(question_files[0])
    task = ClassificationTask(LabelEncoder.fit(data))
    split = task.encode("train", data, Tokenizer.from_pretrained(minilm_dir), 64, LongText())
    model = load_pretrained(minilm_dir, BertForSequenceClassification, id2label=task.encoder.id2label)
    trainable = TrainableClassifier(model, 2).eval()
    rows = split.features
    cache = FrozenCache.build(trainable.encoder, rows.input_ids, rows.input_mask, rows.segment_ids,
                              batch_size=5, progress=False)
    with torch.no_grad():
        for cached, direct in zip(SplitBatches(split, 4, 0, cache).epoch(0),
                                  SplitBatches(split, 4, 0, None).epoch(0)):
            a = trainable.outputs(input_mask=cached["input_mask"], frozen_tokens=cached["frozen_tokens"])
            b = trainable.outputs(direct["input_ids"], direct["input_mask"], direct["segment_ids"])
            assert (a - b).abs().max() <= 1e-5


def test_training_with_and_without_the_cache_ends_at_the_same_weights(minilm_dir, tmp_path, question_files):
    train, _ = question_files
    run_finetune(quick(minilm_dir, tmp_path / "a", train, fine_tune_layers=2))
    run_finetune(quick(minilm_dir, tmp_path / "b", train, fine_tune_layers=2, frozen_cache=False))
    a = load_file(str(tmp_path / "a" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "model" / "model.safetensors"))
    original = load_file(str(minilm_dir / "model.safetensors"))
    assert not torch.equal(a["bert.encoder.layer.5.output.dense.weight"], original["encoder.layer.5.output.dense.weight"])
    assert torch.equal(a["bert.encoder.layer.3.output.dense.weight"], original["encoder.layer.3.output.dense.weight"])
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-5), name


def test_a_run_stopped_mid_epoch_resumes_bit_identical(minilm_dir, tmp_path, question_files):
    train, _ = question_files
    run_finetune(quick(minilm_dir, tmp_path / "straight", train))
    stopped = run_finetune(quick(minilm_dir, tmp_path / "killed", train, checkpoint_every=1, stop_after_steps=3))
    assert stopped["stopped"] and stopped["steps"] == 3  # mid-way through the first of two 5-step epochs
    assert not (tmp_path / "killed" / "model" / "model.safetensors").exists()
    run_finetune(quick(minilm_dir, tmp_path / "killed", train, checkpoint_every=1, resume=True))
    straight = load_file(str(tmp_path / "straight" / "model" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "killed" / "model" / "model.safetensors"))
    for name, tensor in straight.items():
        assert torch.equal(tensor, resumed[name]), name
    original = load_file(str(minilm_dir / "model.safetensors"))
    assert not torch.equal(straight["bert.encoder.layer.5.output.dense.weight"],
                           original["encoder.layer.5.output.dense.weight"]), "training must change the top layer"


def test_multi_label_regression_and_pairs(minilm_dir, tmp_path):
    multi = write_csv(tmp_path / "multi.csv", [
        ("red apples and green pears", "red|green"), ("a red car", "red"), ("green grass", "green"),
        ("blue sky over red roofs", "blue|red"), ("the blue sea", "blue"), ("green and blue", "green|blue")] * 2)
    result = run_finetune(quick(minilm_dir, tmp_path / "m", multi, label_separator="|", val_fraction=0.25))
    assert result["task"] == "multi_label"
    assert {"micro_f1", "macro_f1", "subset_accuracy"} <= set(result["metrics"]["validation"])
    predicted = Classifier.load(tmp_path / "m" / "model").predict(["red and green"])[0]
    assert set(predicted["probabilities"]) == {"blue", "green", "red"} and isinstance(predicted["label"], list)

    scores = write_csv(tmp_path / "scores.csv", [(f"rated {i} stars", f"{i * 0.37:.2f}") for i in range(24)])
    result = run_finetune(quick(minilm_dir, tmp_path / "r", scores, val_fraction=0.25))
    assert result["task"] == "regression"
    assert {"mse", "mae", "pearson", "spearman"} <= set(result["metrics"]["validation"])
    assert isinstance(Classifier.load(tmp_path / "r" / "model").predict(["rated 3 stars"])[0]["label"], float)

    pairs = write_csv(tmp_path / "pairs.csv", [
        ("a cat sat", "a cat was sitting", "same"), ("a dog ran", "the sky is blue", "different"),
        ("he reads books", "he is reading a book", "same"), ("it rains", "cars are fast", "different")] * 3,
        header="sentence1,sentence2,label")
    result = run_finetune(quick(minilm_dir, tmp_path / "p", pairs))
    assert result["task"] == "classification" and result["labels"] == ["different", "same"]
    assert json.loads((tmp_path / "p" / "model" / "bertforge.json").read_text())["text_pairs"] is True


def test_class_weights_balanced_are_inverse_frequencies(minilm_dir, tmp_path):
    from bertforge.data.labeled import LabelEncoder, read_labeled
    from bertforge.tasks.classification.trainable import balanced_loss_weights

    path = write_csv(tmp_path / "skewed.csv", [("spam offer", "spam")] * 2 + [("hello friend", "ham")] * 6)
    encoder = LabelEncoder.fit(read_labeled(path))
    targets = encoder.encode(read_labeled(path)).targets
    assert balanced_loss_weights(targets, encoder).tolist() == pytest.approx([8 / (2 * 6), 8 / (2 * 2)])


# -- the command line ------------------------------------------------------------------


def test_cli_finetune_predict_evaluate(minilm_dir, tmp_path, question_files, capsys, monkeypatch):
    import io
    import sys

    train, test = question_files
    out = tmp_path / "cli-model"
    code = main(["finetune", "--train", train, "--test", test, "--model", str(minilm_dir), "--out", str(out),
                 "--epochs", "1", "--batch-size", "6", "--fine-tune-layers", "1", "--val-fraction", "0", "--quiet"])
    assert code == 0 and (out / "model.safetensors").is_file()

    monkeypatch.setattr(sys, "stdin", io.StringIO("Who wrote Hamlet ?\nWhere is Paris ?\n"))
    capsys.readouterr()
    assert main(["predict", "--model", str(out), "-"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["text"] for line in lines] == ["Who wrote Hamlet ?", "Where is Paris ?"]
    assert all(abs(sum(line["probabilities"].values()) - 1) < 1e-4 for line in lines)

    assert main(["predict", "--model", str(out), test, "--output", str(tmp_path / "p.csv"), "--quiet"]) == 0
    header = (tmp_path / "p.csv").read_text().splitlines()[0]
    assert header == "text,label,p_HUM,p_LOC,p_NUM"

    assert main(["evaluate", "--model", str(out), "--data", test, "--out", str(tmp_path / "eval")]) == 0
    assert "accuracy" in capsys.readouterr().out
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["num_examples"] == 6


def test_cli_unseen_test_label_is_one_line_and_drop_keeps_going(minilm_dir, tmp_path, question_files, capsys):
    train, _ = question_files
    test = write_csv(tmp_path / "odd.csv", [("What is love ?", "DESC"), ("Who is Poe ?", "HUM")])
    args = ["finetune", "--train", train, "--test", test, "--model", str(minilm_dir), "--out", str(tmp_path / "o"),
            "--epochs", "1", "--fine-tune-layers", "0", "--val-fraction", "0", "--quiet"]
    capsys.readouterr()
    assert main(args) == 1
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "DESC" in error and "odd.csv" in error and "--unknown-labels drop" in error
    assert main(args + ["--unknown-labels", "drop"]) == 0
    assert "dropped 1 rows" in capsys.readouterr().err


def test_cli_bad_usage_and_missing_file(capsys, tmp_path):
    with pytest.raises(SystemExit) as usage:
        main(["finetune", "--train"])
    assert usage.value.code == 2
    assert main(["finetune", "--train", str(tmp_path / "nope.csv"), "--model", "m", "--out", str(tmp_path)]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("bertforge: error:") and "nope.csv" in error


def test_finetune_under_torchrun_is_refused_before_it_claims_the_folder(minilm_dir, tmp_path, question_files,
                                                                         capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")  # what torchrun sets in each of its processes
    train, _ = question_files
    code = main(["finetune", "--train", str(train), "--model", str(minilm_dir), "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1 and "finetune runs in one process" in error[0]
    assert not (tmp_path / "out").exists()


def test_a_vocab_larger_than_the_model_is_one_clear_error(minilm_dir, tmp_path, question_files):
    from bertforge.errors import BertforgeError

    model_dir = tmp_path / "mismatched"
    model_dir.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer_config.json"):
        (model_dir / name).symlink_to(minilm_dir / name)
    vocab = (minilm_dir / "vocab.txt").read_text(encoding="utf-8")
    (model_dir / "vocab.txt").write_text(vocab + "".join(f"extra{i}\n" for i in range(10)), encoding="utf-8")
    with pytest.raises(BertforgeError) as error:
        run_finetune(quick(minilm_dir, tmp_path, question_files[0], model=str(model_dir)))
    assert "30532 tokens" in str(error.value) and "30522" in str(error.value)


def test_sequence_length_above_positions_fails_before_training(minilm_dir, tmp_path, question_files):
    from bertforge.errors import BertforgeError

    with pytest.raises(BertforgeError, match="above the model's 512 positions"):
        run_finetune(quick(minilm_dir, tmp_path, question_files[0], max_seq_length=600))
    assert not (tmp_path / "model" / "checkpoint.pt").exists()


def test_a_pretrained_directory_is_not_a_classifier(minilm_dir):
    from bertforge.errors import BertforgeError

    with pytest.raises(BertforgeError, match="no trained classifier head"):
        Classifier.load(minilm_dir)


def test_predicting_no_texts_gives_no_rows(minilm_dir, tmp_path, question_files):
    run_finetune(quick(minilm_dir, tmp_path, question_files[0], epochs=1))
    assert Classifier.load(tmp_path / "model").predict([]) == []


def test_resume_with_validation_ends_on_the_best_epoch_weights(minilm_dir, tmp_path, question_files):
    train, _ = question_files
    settings = dict(val_fraction=0.3, epochs=3, checkpoint_every=1)
    straight = run_finetune(quick(minilm_dir, tmp_path / "straight", train, **settings))
    run_finetune(quick(minilm_dir, tmp_path / "killed", train, stop_after_steps=6, **settings))
    resumed = run_finetune(quick(minilm_dir, tmp_path / "killed", train, resume=True, **settings))
    assert resumed["metrics"]["validation"] == straight["metrics"]["validation"]
    a = load_file(str(tmp_path / "straight" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "model" / "model.safetensors"))
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_two_runs_with_one_seed_are_identical_and_another_seed_differs(minilm_dir, tmp_path, question_files):
    train, _ = question_files
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        run_finetune(quick(minilm_dir, tmp_path / name, train, epochs=1, seed=seed))
    a, b, c = (load_file(str(tmp_path / name / "model" / "model.safetensors")) for name in "abc")
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert not torch.equal(a["classifier.weight"], c["classifier.weight"])


def test_layerwise_learning_rates_shrink_going_down(minilm_dir):
    from bertforge import BertForSequenceClassification, load_pretrained

    model = load_pretrained(minilm_dir, BertForSequenceClassification, id2label={0: "a", 1: "b"})
    trainable = TrainableClassifier(model, "all")
    groups = trainable.layerwise_groups(learning_rate=1e-4, decay=0.5, weight_decay=0.01)
    rate_of = {id(p): group["lr"] for group in groups for p in group["params"]}
    assert rate_of[id(model.classifier.weight)] == pytest.approx(1e-4)
    assert rate_of[id(model.bert.encoder.layer[5].output.dense.weight)] == pytest.approx(0.5e-4)
    assert rate_of[id(model.bert.encoder.layer[0].output.dense.weight)] == pytest.approx(1e-4 * 0.5 ** 6)
    assert rate_of[id(model.bert.embeddings.word_embeddings.weight)] == pytest.approx(1e-4 * 0.5 ** 7)
    assert len(rate_of) == sum(1 for p in trainable.parameters() if p.requires_grad)


def test_finetune_from_a_dataframe_returns_the_trained_model(minilm_dir, tmp_path):
    pandas = pytest.importorskip("pandas")
    import bertforge

    frame = pandas.DataFrame([{"question": text, "kind": label, "source": "made up"}
                              for label, texts in QUESTIONS.items() for text in texts])
    classifier = bertforge.finetune(train=frame, model=minilm_dir, out=tmp_path / "m", text_column="question",
                                    label_column="kind", epochs=2, batch_size=8, learning_rate=1e-4,
                                    fine_tune_layers=1, val_fraction=0.25, progress=False)
    assert isinstance(classifier, Classifier)
    predictions = classifier.predict(["Who wrote the song ?", "Where is the lake ?"])
    assert {prediction["label"] for prediction in predictions} <= set(QUESTIONS)
    saved = json.loads((tmp_path / "m" / "bertforge.json").read_text())
    assert saved["settings"]["train"] == "<DataFrame>" and saved["settings"]["epochs"] == 2
    assert sorted(saved["label_encoder"]["classes"]) == sorted(QUESTIONS)
    assert Classifier.load(tmp_path / "m").predict(["Who wrote the song ?"]) == predictions[:1]


def test_each_sweep_point_is_timed_after_its_own_warm_up_and_trains_as_a_plain_run(minilm_dir, tmp_path,
                                                                                     question_files, monkeypatch):
    import bertforge.apps.finetune as finetune_app

    train, test = question_files
    events = []
    real_warm_up, real_clock = finetune_app.warm_up, finetune_app.clock

    def recording_warm_up(trainable, batch, device, precision, evaluate):
        before = {name: value.clone() for name, value in trainable.state_dict().items()}
        real_warm_up(trainable, batch, device, precision, evaluate)
        assert all(torch.equal(value, before[name]) for name, value in trainable.state_dict().items())
        assert all(parameter.grad is None for parameter in trainable.parameters())
        events.append(("warm up", trainable.encoder.trainable_layers, evaluate is not None))

    monkeypatch.setattr(finetune_app, "warm_up", recording_warm_up)
    monkeypatch.setattr(finetune_app, "clock", lambda: events.append("clock") or real_clock())
    settings = quick(minilm_dir, tmp_path, train, val=test, epochs=1, out=str(tmp_path / "sweep"))
    finetune_app.sweep_layers(settings, [0, 1])
    # Each point: its warm-up (training step and validation pass), then the clock's start and stop.
    assert events == [("warm up", [], True), "clock", "clock", ("warm up", [5], True), "clock", "clock"]

    run_finetune(quick(minilm_dir, tmp_path, train, val=test, epochs=1, out=str(tmp_path / "plain")))
    swept, plain = (load_file(str(tmp_path / folder / "model.safetensors")) for folder in ("sweep/layers-1", "plain"))
    assert all(torch.equal(swept[name], plain[name]) for name in plain)
