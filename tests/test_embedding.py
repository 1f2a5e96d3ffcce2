"""Sentence embeddings: parity with sentence-transformers on real texts, pooling choices, the CLI."""

import csv
import io
import json
import sys

import numpy as np
import pytest
import torch

from bertforge.cli.app import main
from bertforge.apps.embedding import Embedder, check_output_path, encode
from bertforge.errors import BertforgeError


def _texts(path, count):
    with open(path, newline="", encoding="utf-8") as handle:
        return [row["text"] for row in csv.DictReader(handle)][:count]


@pytest.fixture(scope="module")
def embedder(minilm_dir):
    return Embedder.load(minilm_dir)


def test_mean_normalized_matches_sentence_transformers(minilm_dir, data_dir):
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(minilm_dir), device="cpu")
    # The package directory carries modules.json: Transformer, mean Pooling, Normalize.
    assert [type(module).__name__ for module in model] == ["Transformer", "Pooling", "Normalize"]
    assert model.max_seq_length == 256
    # Short questions and longer, messier SMS texts: both padding and truncation paths.
    texts = _texts(data_dir / "trec" / "test.csv", 200) + _texts(data_dir / "sms_spam" / "test.csv", 200)
    ours = Embedder.load(minilm_dir, pooling="mean", normalize=True,
                         max_length=model.max_seq_length).encode(texts)
    theirs = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert ours.shape == theirs.shape == (400, 384) and ours.dtype == np.float32
    difference = float(np.abs(ours - theirs).max())
    print(f"max abs diff vs sentence-transformers: {difference:.2e}")
    assert difference <= 1e-5


def test_cls_and_pooled(minilm_dir, embedder):
    texts = ["What is a caldera ?", "Who wrote The Raven ?"]
    cls = Embedder.load(minilm_dir, pooling="cls").encode(texts)
    pooled = encode(minilm_dir, texts, pooling="pooled")
    assert cls.shape == pooled.shape == (2, 384)
    arrays = embedder.tokenizer.encode_batch(texts, max_length=embedder.max_length)
    with torch.inference_mode():
        out = embedder.model(*(torch.from_numpy(arrays[k]) for k in ("input_ids", "input_mask", "segment_ids")))
    np.testing.assert_allclose(cls, out.sequence_output[:, 0].numpy(), atol=1e-5)
    np.testing.assert_allclose(pooled, out.pooled_output.numpy(), atol=1e-5)
    assert np.abs(pooled).max() <= 1.0  # the pooler ends in tanh


def test_normalize_and_order(minilm_dir, embedder):
    # Mixed lengths over several batches: the length sort must not reorder the rows.
    texts = [("word " * n).strip() for n in (40, 1, 17, 3, 60, 2, 9)]
    batched = Embedder.load(minilm_dir, batch_size=2).encode(texts)
    one_by_one = np.concatenate([embedder.encode([text]) for text in texts])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    unit = Embedder.load(minilm_dir, normalize=True, batch_size=3).encode(texts)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(unit, batched / np.linalg.norm(batched, axis=1, keepdims=True), atol=1e-6)
    assert embedder.encode([]).shape == (0, 384)


@pytest.mark.parametrize("texts, message", [
    (["fine", ""], "texts[1] is empty"),
    (["fine", "also fine", 3], "texts[2] is int"),
    ("one string", "single string"),
])
def test_bad_texts(embedder, texts, message):
    with pytest.raises(BertforgeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        embedder.encode(texts)


def test_bad_settings(minilm_dir):
    with pytest.raises(BertforgeError, match="pooling='max' is not one of"):
        Embedder.load(minilm_dir, pooling="max")
    with pytest.raises(BertforgeError, match="above this model's limit of 512"):
        Embedder.load(minilm_dir, max_length=1000)


def test_cli_npy_and_jsonl_round_trip(minilm_dir, embedder, tmp_path, capsys):
    source = tmp_path / "texts.csv"
    source.write_text('id,text\n1,"How far is Denver, CO ?"\n2,Héllo wörld\n3,"a ""quoted"" text"\n',
                      encoding="utf-8")
    expected = embedder.encode(["How far is Denver, CO ?", "Héllo wörld", 'a "quoted" text'])
    for name in ("out.npy", "out.jsonl"):
        assert main(["embed", "--model", str(minilm_dir), str(source), "--out", str(tmp_path / name)]) == 0
        assert capsys.readouterr().out.strip().startswith("3 embeddings of dimension 384 written to ")
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, atol=1e-6)
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [row["text"] for row in rows][1] == "Héllo wörld"
    # JSON holds the float32 values exactly: both files give the same array, bit for bit.
    assert np.array_equal(np.array([row["embedding"] for row in rows], dtype=np.float32),
                          np.load(tmp_path / "out.npy"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "out.npy", "texts.csv"]  # no temporaries


def test_cli_stdin(minilm_dir, embedder, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("first line\n\nsecond line here\n"))
    out = tmp_path / "v.npy"
    assert main(["embed", "--model", str(minilm_dir), "-", "--out", str(out), "--pooling", "cls",
                 "--normalize", "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    reference = Embedder.load(minilm_dir, pooling="cls", normalize=True).encode(["first line", "second line here"])
    np.testing.assert_allclose(np.load(out), reference, atol=1e-6)


def test_cli_parquet_holds_texts_and_the_same_vectors(minilm_dir, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet", reason="install the parquet extra: pip install -e '.[parquet]'")
    source = tmp_path / "texts.txt"
    source.write_text("first line\nHéllo wörld\n", encoding="utf-8")
    for name in ("v.parquet", "v.npy"):
        assert main(["embed", "--model", str(minilm_dir), str(source), "--out", str(tmp_path / name),
                     "--normalize", "--quiet"]) == 0
    table = pq.read_table(tmp_path / "v.parquet")
    assert table.column_names == ["text", "embedding"]
    assert table.column("text").to_pylist() == ["first line", "Héllo wörld"]
    vectors = np.stack(table.column("embedding").to_numpy(zero_copy_only=False)).astype(np.float32)
    assert vectors.dtype == np.float32 and np.array_equal(vectors, np.load(tmp_path / "v.npy"))


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # an import of it now fails
    with pytest.raises(BertforgeError, match=r"pip install 'bertforge\[parquet\]'"):
        check_output_path(tmp_path / "v.parquet")


@pytest.mark.parametrize("case, message", [
    ("empty text", "line 3: the text"),
    ("suffix", "name the output .npy, .jsonl or .parquet"),
    ("model", "no such model directory"),
])
def test_cli_errors_are_one_line(minilm_dir, tmp_path, capsys, case, message):
    source = tmp_path / "texts.csv"
    source.write_text("text,id\nfine,1\n" + (",2\n" if case == "empty text" else ""), encoding="utf-8")
    out = tmp_path / {"suffix": "v.csv"}.get(case, "v.npy")
    model = str(tmp_path / "missing-model") if case == "model" else str(minilm_dir)
    assert main(["embed", "--model", model, str(source), "--out", str(out)]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("bertforge: error: ") and message in error, error
    assert not out.exists()
