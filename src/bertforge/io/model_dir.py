"""Read and write the standard BERT model directory.

A model directory holds ``config.json`` (or Google's ``bert_config.json``), the
weights as ``model.safetensors`` (or ``pytorch_model.bin``, read without pickle
code execution), and the tokenizer files. Checkpoints saved with or without the
``bert.`` prefix, with or without heads, and with TF-era names (``gamma``/``beta``)
load into any of the networks in ``bertforge.model`` (``bert``, ``heads``); what did not fit is
reported by name. ``bertforge.io.load.load_pretrained`` opens a directory (or a
TensorFlow folder, through ``bertforge.io.tensorflow``) with the readers here.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from bertforge.errors import BertforgeError
from bertforge.files import make_readable, replacing, unreadable_reason, write_text_atomically
# Finding the folder needs no torch; it lives apart so an exported folder opens without it.
from bertforge.io.model_paths import resolve_model_dir  # noqa: F401 (importable from here as before)
from bertforge.model.bert import PreTrainedBert
from bertforge.text.vocab_files import WEIGHT_FILES

log = logging.getLogger(__name__)

BACKBONE_PARTS = ("embeddings.", "encoder.")
HEAD_PARTS = ("classifier.", "cls.")
# Buffers some writers save that carry no learned value.
IGNORED_KEYS = re.compile(r"(^|\.)(position_ids|embeddings\.token_type_ids)$")


@dataclass
class LoadReport:
    """Which checkpoint weights found no place in the model, and which model weights got none."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = []
        if self.missing:
            parts.append(f"newly initialised (train before use): {', '.join(self.missing)}")
        if self.unexpected:
            parts.append(f"not used from the checkpoint: {', '.join(self.unexpected)}")
        return "; ".join(parts) or "all weights matched"


# -- finding the files --------------------------------------------------------------


def read_state_dict(directory: Path) -> tuple[dict[str, torch.Tensor], Path]:
    """The tensors of a model directory and the file they came from."""
    from safetensors.torch import load_file

    single = directory / "model.safetensors"
    index = directory / "model.safetensors.index.json"
    legacy = directory / "pytorch_model.bin"
    try:
        if single.is_file():
            return load_file(str(single)), single
        if index.is_file():
            state = {}
            for shard in _shard_files(directory, index):
                state.update(load_file(str(shard)))
            return state, index
        if legacy.is_file():
            # weights_only: a .bin is a pickle, and pickles can run code.
            return torch.load(legacy, map_location="cpu", weights_only=True), legacy
    except BertforgeError:
        raise
    except Exception as error:
        raise BertforgeError(f"{directory}: cannot read the weights ({unreadable_reason(error)}); "
                             "the file is damaged, not a checkpoint, or not safe to load") from None
    raise BertforgeError(
        f"{directory}: no weight file ({', '.join(WEIGHT_FILES)}); pass a complete model directory"
    )


def _shard_files(directory: Path, index: Path) -> list[Path]:
    """The weight files an index names: regular files inside the model folder, nothing else
    (a name reaching outside with ``..`` or a link, or a FIFO that would block the read)."""
    try:
        names = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BertforgeError(f"{index}: is not a weight index (a JSON object with a weight_map); "
                             "pass a complete model directory") from None
    folder = directory.resolve()
    shards = []
    for name in names:
        shard = (directory / str(name)).resolve()
        if shard.parent != folder:
            raise BertforgeError(f"{index}: names {name!r}, which is not a file in the model folder; "
                                 "an index may name only files beside it")
        if not shard.is_file():  # is_file is False for FIFOs, sockets and devices
            raise BertforgeError(f"{index}: names {name!r}, which is not a regular file in {directory}")
        shards.append(shard)
    return shards


# -- matching names --------------------------------------------------------------------


def _standard_name(key: str) -> str:
    """TF-era names to today's: LayerNorm.gamma -> LayerNorm.weight, beta -> bias."""
    key = re.sub(r"\.gamma$", ".weight", key)
    return re.sub(r"\.beta$", ".bias", key)


def map_checkpoint_keys(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Rename checkpoint tensors to the model's names (prefix, legacy spellings)."""
    model_keys = set(model.state_dict())
    model_has_prefix = any(key.startswith("bert.") for key in model_keys)
    mapped: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if IGNORED_KEYS.search(key):
            continue
        name = _standard_name(key)
        if model_has_prefix and name.startswith(BACKBONE_PARTS + ("pooler.",)):
            name = "bert." + name
        elif not model_has_prefix and name.startswith("bert."):
            name = name[len("bert."):]
        # Older writers saved the MLM bias a second time on the decoder.
        if name.endswith("cls.predictions.decoder.bias"):
            name = name.replace("decoder.bias", "bias")
            if name in mapped:
                continue
        mapped[name] = tensor
    return mapped


def _tied_names(model: nn.Module) -> set[str]:
    """Names under which a parameter appears a second time (the tied MLM decoder)."""
    first: dict[int, str] = {}
    tied = set()
    for name, tensor in model.state_dict(keep_vars=True).items():
        if id(tensor) in first:
            tied.add(name)
        else:
            first[id(tensor)] = name
    return tied


def load_state(model: nn.Module, state: dict[str, torch.Tensor], source: str, strict: bool = True) -> LoadReport:
    """Copy ``state`` into ``model``; shape mismatches and a missing backbone are errors."""
    state = map_checkpoint_keys(state, model)
    tied = _tied_names(model)
    expected = model.state_dict()
    for name, tensor in state.items():
        if name in expected and tuple(tensor.shape) != tuple(expected[name].shape):
            raise BertforgeError(
                f"{source}: weight {name} has shape {tuple(tensor.shape)} in the checkpoint but "
                f"{tuple(expected[name].shape)} in the model built from its config; the config does not match the weights"
            )
    report = LoadReport(
        missing=sorted(name for name in expected if name not in state and name not in tied),
        unexpected=sorted(name for name in state if name not in expected and name not in tied),
    )
    backbone_missing = [name for name in report.missing if name.removeprefix("bert.").startswith(BACKBONE_PARTS)]
    if strict and backbone_missing:
        shown = ", ".join(backbone_missing[:5]) + (f" and {len(backbone_missing) - 5} more" if len(backbone_missing) > 5 else "")
        raise BertforgeError(
            f"{source}: the checkpoint lacks encoder weights ({shown}); it is not a complete BERT checkpoint"
        )
    model.load_state_dict({name: tensor for name, tensor in state.items() if name in expected}, strict=False)
    # A task head missing from a pretrained checkpoint is the normal start of
    # fine-tuning; anything else missing deserves a warning.
    heads = [name for name in report.missing if name.startswith(HEAD_PARTS)]
    others = [name for name in report.missing if not name.startswith(HEAD_PARTS)]
    if heads:
        log.info("%s: new task head, train before use: %s", source, ", ".join(heads))
    if others:
        log.warning("%s: newly initialised, train before use: %s", source, ", ".join(others))
    if report.unexpected:
        log.info("%s: not used from the checkpoint: %s", source, ", ".join(report.unexpected))
    return report


# -- writing ---------------------------------------------------------------------------


def save_pretrained(model: PreTrainedBert, directory: str | os.PathLike, tokenizer=None,
                    metadata: dict | None = None) -> Path:
    """Write ``config.json``, ``model.safetensors`` and, when given, the tokenizer files
    and ``bertforge.json``; `transformers` opens the result with its Auto classes.

    >>> import tempfile
    >>> from bertforge.model.heads import BertForMaskedLM
    >>> from bertforge.model.config import BertConfig
    >>> config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
    ...                     num_attention_heads=2, intermediate_size=32)
    >>> out = save_pretrained(BertForMaskedLM(config), tempfile.mkdtemp())
    >>> sorted(p.name for p in out.iterdir())
    ['config.json', 'model.safetensors']
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tied = _tied_names(model)
    state = {name: tensor.detach().contiguous().cpu()
             for name, tensor in model.state_dict().items() if name not in tied}
    with replacing(directory / "model.safetensors") as temporary:
        save_file(state, str(temporary), metadata={"format": "pt"})
        make_readable(temporary)  # safetensors writes 0600; every other file here is 0644
    values = model.config.to_dict()
    values["architectures"] = [type(model).__name__]
    if getattr(model, "num_labels", None) and model.config.id2label is None:
        values["id2label"] = {str(i): f"LABEL_{i}" for i in range(model.num_labels)}
        values["label2id"] = {f"LABEL_{i}": i for i in range(model.num_labels)}
    write_text_atomically(directory / "config.json", json.dumps(values, indent=2) + "\n")
    if tokenizer is not None:
        tokenizer.save(directory)
    if metadata is not None:
        write_text_atomically(directory / "bertforge.json", json.dumps(metadata, indent=2, default=_json_path) + "\n")
    return directory


def _json_path(value):
    """Paths in metadata are written as text; anything else unknown is a bug to see."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} in bertforge.json metadata")
