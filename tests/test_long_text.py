"""Long texts: truncate, head-tail and sliding windows in classifiers, embeddings and fine-tuning."""

import json
import random

import numpy as np
import pytest
import torch

from bertforge.apps.predictor import Classifier
from bertforge.cli.app import main
from bertforge.apps.embedding import Embedder
from bertforge.errors import BertforgeError
from bertforge.text.long_text import LongText, combine, encode_windows
from bertforge.text.tokenizer import Tokenizer
from bertforge.apps.finetune import FineTuneSettings, run_finetune

from test_finetune import QUESTIONS, write_csv

# About 900 word pieces: longer than MiniLM's 512 positions.
LONG = " ".join(f"Sentence {i} tells of the raven that came to the chamber door at midnight ." for i in range(60))


@pytest.fixture(scope="module")
def tokenizer(minilm_dir):
    return Tokenizer.from_pretrained(minilm_dir)


def test_short_texts_give_the_rows_truncation_gives(tokenizer):
    texts = ["Who wrote the poem ?", "Where is the river ?", "x"]
    truncated = tokenizer.encode_batch(texts, max_length=32, padding="longest")
    for mode in ("head-tail", "sliding-window"):
        rows = encode_windows(tokenizer, texts, None, 32, LongText(mode))
        assert rows.owner.tolist() == [0, 1, 2]
        np.testing.assert_array_equal(rows.input_ids, truncated["input_ids"])
        np.testing.assert_array_equal(rows.input_mask, truncated["input_mask"])


def test_windows_cover_every_token_of_a_text_longer_than_the_positions(tokenizer):
    pieces = tokenizer.token_ids([LONG])[0]
    assert len(pieces) > 512
    rows = encode_windows(tokenizer, [LONG, "short"], None, 128, LongText("sliding-window", stride=100))
    windows = [row[mask.astype(bool)][1:-1].tolist() for row, mask in zip(rows.input_ids, rows.input_mask)]
    assert rows.input_ids.shape[1] == 128 and rows.owner.tolist()[-1] == 1
    first = [window for window, owner in zip(windows, rows.owner) if owner == 0]
    # Windows of 126 pieces start every 100, and one more ends on the last piece.
    starts = list(range(0, len(pieces) - 126 + 1, 100))
    if starts[-1] + 126 < len(pieces):
        starts.append(len(pieces) - 126)
    assert first == [pieces[start:start + 126] for start in starts]
    covered = set().union(*(range(start, start + 126) for start in starts))
    assert covered == set(range(len(pieces)))


def test_head_tail_keeps_a_quarter_from_the_start_and_the_rest_from_the_end(tokenizer):
    pieces = tokenizer.token_ids([LONG])[0]
    rows = encode_windows(tokenizer, [LONG], None, 130, LongText("head-tail"))
    kept = rows.input_ids[0][1:-1].tolist()
    assert kept == pieces[:32] + pieces[-96:]
    assert rows.input_ids[0][0] == tokenizer.cls_id and rows.input_ids[0][-1] == tokenizer.sep_id


def test_combine_folds_rows_per_text_by_mean_or_max(tokenizer):
    rows = encode_windows(tokenizer, [LONG, "short"], None, 64, LongText("sliding-window"))
    outputs = np.random.default_rng(0).normal(size=(rows.num_rows, 3)).astype(np.float32)
    mean, top = combine(outputs, rows, "mean"), combine(outputs, rows, "max")
    assert mean.dtype == top.dtype == np.float32  # what .npy files and callers get
    mine = rows.owner == 0
    np.testing.assert_allclose(mean[0], outputs[mine].mean(0), rtol=1e-6)
    np.testing.assert_allclose(top[0], outputs[mine].max(0))
    np.testing.assert_allclose(mean[1], outputs[~mine][0])


def test_bad_settings_are_one_line(tokenizer):
    with pytest.raises(BertforgeError, match="longer than the window"):
        encode_windows(tokenizer, [LONG], None, 64, LongText("sliding-window", stride=100))
    with pytest.raises(BertforgeError, match="text pairs"):
        encode_windows(tokenizer, ["a"], ["b"], 64, LongText("head-tail"))
    with pytest.raises(BertforgeError, match="applies to --long-text sliding-window"):
        LongText("truncate", stride=10)
    with pytest.raises(BertforgeError, match="mean or max"):
        LongText("sliding-window", aggregate="median")
    with pytest.raises(BertforgeError, match="applies to --long-text sliding-window, not head-tail"):
        LongText("head-tail", aggregate="max")


def test_embeddings_of_a_long_text_are_the_mean_of_its_windows(minilm_dir):
    windowed = Embedder.load(minilm_dir, normalize=True, max_length=128,
                             long_text=LongText("sliding-window", stride=64))
    plain = Embedder.load(minilm_dir, normalize=False, max_length=128)
    vector = windowed.encode([LONG, "What is a caldera ?"])
    rows = encode_windows(windowed.tokenizer, [LONG], None, 128, LongText("sliding-window", stride=64))
    with torch.no_grad():  # each window through the model on its own
        per_window = plain._forward(*(torch.from_numpy(a) for a in (rows.input_ids, rows.input_mask,
                                                                      rows.segment_ids))).numpy()
    expected = per_window.mean(0)
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(vector[0], expected, atol=1e-5)
    assert np.isclose(np.linalg.norm(vector[1]), 1.0, atol=1e-6)
    truncated = Embedder.load(minilm_dir, normalize=True, max_length=128).encode([LONG])
    assert not np.allclose(truncated[0], vector[0], atol=1e-3)  # the rest of the text counts


def test_finetune_with_windows_records_the_setting_and_predict_uses_it(minilm_dir, tmp_path, capsys):
    # Each text: the question, then filler; with a 32-token window the label only shows in its first window.
    rows = [(f"{text} " + " ".join(["and so on"] * 12), label) for label, texts in QUESTIONS.items() for text in texts]
    random.Random(0).shuffle(rows)
    train = write_csv(tmp_path / "train.csv", rows)
    result = run_finetune(FineTuneSettings.of(train=train, model=str(minilm_dir), out=str(tmp_path / "model"), epochs=1,
                                       batch_size=8, learning_rate=1e-4, val_fraction=0.0, fine_tune_layers=1,
                                       max_seq_length=32, long_text="sliding-window", stride=15,
                                       window_aggregate="max", progress=False))
    assert result["train_examples"] == 24 and result["train_rows"] > 24  # several windows per text
    saved = json.loads((tmp_path / "model" / "bertforge.json").read_text())
    assert saved["long_text"] == {"mode": "sliding-window", "stride": 15, "aggregate": "max"}

    classifier = Classifier.load(tmp_path / "model", device="cpu")
    assert classifier.long_text == LongText("sliding-window", 15, "max")
    texts = [text for text, _ in rows[:3]]
    windows = encode_windows(classifier.tokenizer, texts, None, 32, classifier.long_text)
    with torch.no_grad():
        per_window = classifier.model(*(torch.from_numpy(a) for a in (windows.input_ids, windows.input_mask,
                                                                        windows.segment_ids))).logits.numpy()
    expected = combine(per_window, windows, "max")
    np.testing.assert_allclose(classifier.scores(texts), expected, atol=1e-5)

    # The CLI takes the model's setting unless told otherwise, and refuses a stride beyond the window.
    inputs = tmp_path / "texts.txt"
    inputs.write_text(LONG + "\n", encoding="utf-8")
    assert main(["predict", "--model", str(tmp_path / "model"), str(inputs)]) == 0
    assert json.loads(capsys.readouterr().out)["label"] in QUESTIONS
    assert main(["predict", "--model", str(tmp_path / "model"), str(inputs), "--stride", "40"]) == 1
    assert "longer than the window of 30 tokens" in capsys.readouterr().err


def test_cli_embed_with_a_sliding_window(minilm_dir, tmp_path, capsys):
    inputs = tmp_path / "texts.txt"
    inputs.write_text(LONG + "\nWhat is a caldera ?\n", encoding="utf-8")
    out = tmp_path / "vectors.npy"
    assert main(["embed", "--model", str(minilm_dir), str(inputs), "--out", str(out), "--quiet",
                 "--long-text", "sliding-window", "--stride", "256", "--normalize"]) == 0
    vectors = np.load(out)
    assert vectors.dtype == np.float32
    expected = Embedder.load(minilm_dir, normalize=True, long_text=LongText("sliding-window", 256)).encode(
        [LONG, "What is a caldera ?"])
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    # An embedding is the mean of its windows: embed has no --window-aggregate to offer.
    with pytest.raises(SystemExit) as refused:
        main(["embed", "--model", str(minilm_dir), str(inputs), "--out", str(out), "--quiet",
              "--window-aggregate", "max"])
    assert refused.value.code == 2
    assert "unrecognized arguments: --window-aggregate" in capsys.readouterr().err
