"""ONNX export: one folder, checked on export, run by ONNX Runtime through Classifier and the CLI."""

import csv
import json
import random

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="install the onnx extra: pip install -e '.[onnx]'")
pytest.importorskip("onnxscript", reason="install the onnx extra: pip install -e '.[onnx]'")

from bertforge.apps.predictor import Classifier  # noqa: E402
from bertforge.cli.app import main  # noqa: E402
from bertforge.errors import BertforgeError  # noqa: E402
from bertforge.apps.export import export_onnx  # noqa: E402
from bertforge.text.long_text import LongText  # noqa: E402
from bertforge.io.onnx import OnnxClassifierModel, require  # noqa: E402
from bertforge.apps.finetune import FineTuneSettings, run_finetune  # noqa: E402

from test_finetune import QUESTIONS, write_csv  # noqa: E402

# Short and long texts, a batch of one and odd lengths: the graph keeps batch and length open.
TEXTS = ["Who wrote the poem ?", "Where is the river ?", "How many legs does a spider have ?", "x",
         "What is the name of the longest river in the world and how long is it , in miles ?",
         "Who was the first person to climb the tallest mountain on the continent ?"]


@pytest.fixture(scope="module")
def trained(minilm_dir, tmp_path_factory):
    """A MiniLM question classifier fine-tuned here (top layer, two epochs)."""
    folder = tmp_path_factory.mktemp("questions")
    rows = [(text, label) for label, texts in QUESTIONS.items() for text in texts]
    random.Random(0).shuffle(rows)
    train = write_csv(folder / "train.csv", rows)
    run_finetune(FineTuneSettings.of(train=train, model=str(minilm_dir), out=str(folder / "model"), epochs=2,
                              batch_size=4, learning_rate=1e-4, val_fraction=0.0, fine_tune_layers=1,
                              max_seq_length=64, progress=False))
    return folder / "model"


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("exports") / "fp32"
    return out, export_onnx(trained, out)


def test_fp32_export_is_one_folder_that_matches_pytorch(trained, exported):
    out, check = exported
    assert {"model.onnx", "config.json", "vocab.txt", "tokenizer.json", "bertforge.json"} <= {
        path.name for path in out.iterdir()}
    assert not any(name.startswith(".") for name in (path.name for path in out.parent.iterdir()))
    # The check ran on the training file the model records, not on made-up texts.
    assert check.sample == "train.csv" and check.examples == 24
    assert check.max_abs_logit_diff <= 1e-4 and check.prediction_agreement == 1.0
    recorded = json.loads((out / "bertforge.json").read_text())
    assert recorded["export"]["check"]["max_abs_logit_diff"] == check.max_abs_logit_diff
    assert recorded["label_encoder"] == json.loads((trained / "bertforge.json").read_text())["label_encoder"]

    torch_side, onnx_side = Classifier.load(trained, device="cpu"), Classifier.load(out)
    assert isinstance(onnx_side.model, OnnxClassifierModel)
    for batch_size in (1, 4, 128):
        difference = np.abs(onnx_side.scores(TEXTS, batch_size=batch_size) - torch_side.scores(TEXTS)).max()
        assert difference <= 1e-4
    assert [row["label"] for row in onnx_side.predict(TEXTS)] == [row["label"] for row in torch_side.predict(TEXTS)]


def test_onnx_folder_reads_long_texts_with_a_sliding_window(trained, exported):
    out, _ = exported
    long_text = " ".join(["Who wrote the poem about the raven and the lost Lenore ?"] * 60)  # ~ 800 tokens
    setting = LongText("sliding-window", stride=32)
    torch_side = Classifier.load(trained, device="cpu", long_text=setting)
    onnx_side = Classifier.load(out, long_text=setting)
    expected = torch_side.scores([long_text, "Where is the river ?"])
    assert np.abs(onnx_side.scores([long_text, "Where is the river ?"]) - expected).max() <= 1e-4


def test_int8_export_is_smaller_and_agrees(trained, exported, tmp_path):
    fp32, _ = exported
    check = export_onnx(trained, tmp_path / "int8", int8=True, min_agreement=0.9)
    assert check.precision == "int8"
    # Every matrix product and the word embeddings are int8.
    assert (tmp_path / "int8" / "model.onnx").stat().st_size < (fp32 / "model.onnx").stat().st_size / 3.5
    assert check.prediction_agreement >= 0.9
    int8_scores = Classifier.load(tmp_path / "int8").scores(TEXTS)
    fp32_scores = Classifier.load(fp32).scores(TEXTS)
    # The fixture's model is trained briefly (logits within ~0.1 of each other), so some
    # calls are closer than int8 rounding: only those may change their label.
    error = np.abs(int8_scores - fp32_scores).max()
    assert error < 0.05
    top_two = np.sort(fp32_scores, axis=1)[:, -2:]
    clear = top_two[:, 1] - top_two[:, 0] > 2 * error
    assert clear.any()
    assert (int8_scores.argmax(1) == fp32_scores.argmax(1))[clear].all()


def test_cli_export_then_predict_and_evaluate_through_onnx_runtime(trained, tmp_path, capsys):
    out = tmp_path / "cli"
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    assert main(["export", "--format", "onnx", "--model", str(trained), "--out", str(out),
                 "--sample", str(texts)]) == 0
    assert "max abs logit difference" in capsys.readouterr().out
    assert main(["predict", "--model", str(out), str(texts), "--output", str(tmp_path / "labels.csv")]) == 0
    with open(tmp_path / "labels.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["label"] for row in rows] == [row["label"] for row in Classifier.load(trained).predict(TEXTS)]
    labeled = write_csv(tmp_path / "labeled.csv", [(text, label) for label, group in QUESTIONS.items()
                                                   for text in group[:2]])
    assert main(["evaluate", "--model", str(out), "--data", labeled]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_bad_folders_and_destinations_are_one_line(trained, exported, minilm_dir, tmp_path, capsys):
    out, _ = exported
    # A plain encoder has no classifier to export.
    assert main(["export", "--model", str(minilm_dir), "--out", str(tmp_path / "x")]) == 1
    assert "no trained classifier head" in capsys.readouterr().err
    # Nothing already there is lost: a folder with other files is refused, an earlier export needs --overwrite.
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("keep me")
    with pytest.raises(BertforgeError, match="holds other files"):
        export_onnx(trained, tmp_path / "busy")
    assert (tmp_path / "busy" / "notes.txt").read_text() == "keep me"
    with pytest.raises(BertforgeError, match="--overwrite"):
        export_onnx(trained, out)
    # An exported folder is not a PyTorch model to export again.
    assert main(["export", "--model", str(out), "--out", str(tmp_path / "again")]) == 1
    assert "already an exported ONNX folder" in capsys.readouterr().err


def test_a_broken_or_mismatched_onnx_folder_is_one_line(exported, tmp_path, capsys):
    out, _ = exported
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("bertforge.json", "config.json", "vocab.txt", "tokenizer.json"):
        (broken / name).write_bytes((out / name).read_bytes())
    (broken / "model.onnx").write_bytes(b"not a graph")
    assert main(["predict", "--model", str(broken), "-"]) == 1
    error = capsys.readouterr().err.strip()
    assert "not a readable ONNX model" in error and len(error.splitlines()) == 1

    (broken / "model.onnx").write_bytes((out / "model.onnx").read_bytes())
    metadata = json.loads((out / "bertforge.json").read_text())
    labels = metadata["label_encoder"]
    labels.update(classes=labels["classes"][:2], num_labels=2,
                  id2label={key: value for key, value in labels["id2label"].items() if key in ("0", "1")},
                  label2id={value: index for index, value in enumerate(labels["classes"][:2])})
    (broken / "bertforge.json").write_text(json.dumps(metadata))
    with pytest.raises(BertforgeError, match="mixes files of two models"):
        Classifier.load(broken)


def test_a_missing_extra_names_it():
    with pytest.raises(BertforgeError, match=r"pip install 'bertforge\[onnx\]'"):
        require("onnxruntime_not_installed_here", "running an exported model")


@pytest.mark.slow
def test_int8_trec_model_agrees_with_fp32_on_the_trec_test_set(trec_classifier, data_dir, tmp_path):
    model, _ = trec_classifier
    test = str(data_dir / "trec" / "test.csv")
    check = export_onnx(model, tmp_path / "int8", int8=True, sample=test)
    assert check.examples == 500 and check.prediction_agreement >= 0.99
    fp32 = Classifier.load(model, device="cpu").evaluate(test)["accuracy"]
    int8 = Classifier.load(tmp_path / "int8").evaluate(test)["accuracy"]
    assert fp32 >= 0.9 and int8 >= fp32 - 0.01
