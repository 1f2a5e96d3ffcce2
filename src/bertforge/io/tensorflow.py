"""TensorFlow BERTs to standard names: Google checkpoints, TF Hub modules, SavedModels.

The layouts, and the TensorFlow readers used here, are in ``bertforge.text.tensorflow_vocab``;
the weight-name maps are ``GOOGLE_TF_NAMES`` and ``MODEL_GARDEN_TF_NAMES`` below. TensorFlow
(the ``tensorflow`` extra) is imported only when a checkpoint is read, and a SavedModel's graph
is never executed: its variables are found through the object graph stored beside them.
``read_tensorflow_model`` converts in memory; ``convert`` writes a standard model directory.

>>> tensorflow_name_to_standard("bert/pooler/dense/kernel", GOOGLE_TF_NAMES)
('bert.pooler.dense.weight', 'kernel')
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from bertforge.errors import BertforgeError
from bertforge.files import replacing_folder
from bertforge.io.model_dir import LoadReport, load_state, save_pretrained
from bertforge.model.bert import BertModel, PreTrainedBert
from bertforge.model.heads import BertForMaskedLM, BertForPreTraining, BertForSequenceClassification
from bertforge.model.config import BertConfig
from bertforge.text.tensorflow_vocab import (LAYOUT_NAMES, SavedModelGraphs, TensorFlowCheckpoint,
                                             chosen_lower_case, chosen_vocab_file, declared_tokenization,
                                             google_checkpoint, import_tensorflow, tensorflow_folder,
                                             tensorflow_layout, tensorflow_source)
from bertforge.text.tokenizer import Tokenizer

log = logging.getLogger(__name__)

# Optimizer slots and counters that fine-tuned checkpoints carry beside the weights.
TRAINING_STATE = re.compile(r"(^|/)(global_step|adam_[mv]|Adam(_\d+)?|beta[12]_power|Momentum"
                            r"|_CHECKPOINTABLE_OBJECT_GRAPH)$")
BACKBONE = ("bert.embeddings.", "bert.encoder.")


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


# -- reading -----------------------------------------------------------------------------


@dataclass
class TensorFlowModel:
    """The weights of a TensorFlow BERT under standard names, with its config and vocabulary."""

    layout: str
    source: Path  # the file the weights came from, for messages
    config: BertConfig
    state: dict[str, torch.Tensor]
    vocab_file: Path
    do_lower_case: bool
    unused: list[str] = field(default_factory=list)  # TF variables with no place in a BERT

    @property
    def model_class(self) -> type[PreTrainedBert]:
        """The network that keeps every head the checkpoint has."""
        if any(name.startswith("classifier.") for name in self.state):
            return BertForSequenceClassification
        if any(name.startswith("cls.predictions.") for name in self.state):
            return BertForPreTraining if any(name.startswith("cls.seq_relationship.") for name in self.state) \
                else BertForMaskedLM
        return BertModel

    def tokenizer(self) -> Tokenizer:
        """The tokenizer over the checkpoint's vocabulary, with its lower-casing."""
        return Tokenizer.from_pretrained(self.vocab_file, do_lower_case=self.do_lower_case)


def _arrange(array: np.ndarray, how: str, tf_name: str, shown: Path) -> torch.Tensor:
    """A TensorFlow array in the (out, in) layout of a torch weight."""
    dims = {"kernel": 2, "heads_in": 3, "heads_out": 3, "heads_bias": 2}.get(how)
    if dims is not None and array.ndim != dims:
        raise BertforgeError(
            f"{shown}: variable {tf_name} has shape {tuple(array.shape)}, expected {dims} dimensions; "
            "the checkpoint is not a BERT of this layout"
        )
    if how == "kernel":
        array = array.T
    elif how == "heads_in":  # (hidden, heads, head_dim): one output column per head and position
        array = array.reshape(array.shape[0], -1).T
    elif how == "heads_out":  # (heads, head_dim, hidden)
        array = array.reshape(-1, array.shape[-1]).T
    elif how == "heads_bias":
        array = array.reshape(-1)
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _standard_weights(variables: list[tuple[str, Callable[[], np.ndarray]]], table, shown: Path,
                      strip_prefixes: bool):
    """Standard-named tensors from ``(TF name, read)`` pairs, the TF names left unused,
    and the raw shape of every variable that was used."""
    state: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    raw_shapes: dict[str, tuple] = {}
    unused = []
    for tf_name, read in sorted(variables, key=lambda item: item[0]):
        if TRAINING_STATE.search(tf_name):
            continue
        parts = tf_name.split("/")
        # TF2 models nest the encoder under the names of the objects around it.
        candidates = ["/".join(parts[i:]) for i in range(len(parts) if strip_prefixes else 1)]
        found = next((hit for hit in map(lambda n: tensorflow_name_to_standard(n, table), candidates) if hit), None)
        if found is None:
            unused.append(tf_name)
            continue
        name, how = found
        if name in state:
            raise BertforgeError(
                f"{shown}: variables {origin[name]} and {tf_name} are both {name}; "
                "pass a model with a single BERT encoder"
            )
        array = read()
        raw_shapes[name] = tuple(array.shape)
        state[name], origin[name] = _arrange(array, how, tf_name, shown), tf_name
    return state, unused, raw_shapes


def _read_google(tf, directory: Path):
    prefix = google_checkpoint(directory)
    shown = Path(f"{prefix}.index")
    checkpoint = TensorFlowCheckpoint(tf, prefix, shown)
    state, unused, raw_shapes = _standard_weights(checkpoint.variables(), GOOGLE_TF_NAMES, shown,
                                                  strip_prefixes=False)
    return shown, state, unused, raw_shapes


def _read_tf1_hub(tf, directory: Path):
    shown = directory / "variables" / "variables.index"
    checkpoint = TensorFlowCheckpoint(tf, directory / "variables" / "variables", shown)
    state, unused, raw_shapes = _standard_weights(checkpoint.variables(), GOOGLE_TF_NAMES, shown,
                                                  strip_prefixes=False)
    return shown, state, unused, raw_shapes


def _read_tf2_saved_model(graphs: SavedModelGraphs):
    objects, graph, root, checkpoint = graphs.objects, graphs.stored, graphs.root, graphs.checkpoint
    # Walk both object graphs from the root by child name, as TensorFlow restores them:
    # the SavedModel knows each variable's name, the checkpoint its key.
    variables = []
    pending, seen = [(0, 0)], {root.get("do_lower_case")}
    while pending:
        saved_id, stored_id = pending.pop()
        if saved_id in seen:
            continue
        seen.add(saved_id)
        saved, stored = objects.nodes[saved_id], graph.nodes[stored_id]
        if saved.WhichOneof("kind") == "variable":
            value = [a.checkpoint_key for a in stored.attributes if a.name == "VARIABLE_VALUE"]
            if value:
                variables.append((saved.variable.name.removesuffix(":0"), lambda key=value[0]: checkpoint.get(key)))
        stored_children = {child.local_name: child.node_id for child in stored.children}
        for child in saved.children:
            if child.local_name in stored_children:
                pending.append((child.node_id, stored_children[child.local_name]))

    state, unused, raw_shapes = _standard_weights(variables, MODEL_GARDEN_TF_NAMES, graphs.shown,
                                                  strip_prefixes=True)
    return graphs.shown, state, unused, raw_shapes


# -- config and checks ------------------------------------------------------------------


def _inferred_config(state, raw_shapes, directory: Path, shown: Path, heads: int | None) -> BertConfig:
    """A config from the weights' shapes, for layouts that ship none."""
    word = state.get("bert.embeddings.word_embeddings.weight")
    layers = {int(m.group(1)) for name in state if (m := re.match(r"bert\.encoder\.layer\.(\d+)\.", name))}
    intermediate = state.get("bert.encoder.layer.0.intermediate.dense.weight")
    if word is None or not layers or intermediate is None:
        raise BertforgeError(
            f"{shown}: no BERT word embeddings or encoder layers among the variables; "
            "pass a BERT checkpoint of this layout"
        )
    vocab, hidden = word.shape
    query = raw_shapes.get("bert.encoder.layer.0.attention.self.query.weight", ())
    if heads is None and len(query) == 3:
        heads = query[1]  # the Model Garden keeps heads as their own axis
    if heads is None:
        named = re.search(r"_A-(\d+)", directory.resolve().name)  # Google's names: ..._L-12_H-768_A-12
        if named:
            heads = int(named.group(1))
        else:
            heads = max(1, hidden // 64)
            log.warning("%s: the number of attention heads is not recorded; assuming %d (64 per head, as in "
                        "Google's models); pass num_attention_heads / --heads if that is wrong", directory, heads)
    positions = state.get("bert.embeddings.position_embeddings.weight")
    types = state.get("bert.embeddings.token_type_embeddings.weight")
    return BertConfig(
        vocab_size=vocab, hidden_size=hidden, num_hidden_layers=max(layers) + 1, num_attention_heads=heads,
        intermediate_size=intermediate.shape[0],
        max_position_embeddings=positions.shape[0] if positions is not None else 512,
        type_vocab_size=types.shape[0] if types is not None else 2,
    )


def _check_complete(config: BertConfig, state, shown: Path, table) -> None:
    """Every encoder weight must be there; name the TF variables that are not."""
    with torch.device("meta"):
        expected = BertModel(config).state_dict()
    missing = [f"bert.{name}" for name in expected
               if f"bert.{name}" not in state and f"bert.{name}".startswith(BACKBONE)]
    if missing:
        names = [standard_name_to_tensorflow(name, table) or name for name in missing]
        shown_names = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        raise BertforgeError(
            f"{shown}: variable{'s' if len(names) > 1 else ''} {shown_names} "
            f"{'are' if len(names) > 1 else 'is'} missing; the checkpoint is incomplete: "
            "fetch it again (or pass the complete checkpoint)"
        )


def read_tensorflow_model(path: str | os.PathLike, *, do_lower_case: bool | None = None,
                          num_attention_heads: int | None = None,
                          vocab_file: str | os.PathLike | None = None) -> TensorFlowModel:
    """Read a TensorFlow BERT folder (any of the three layouts) into standard-named tensors.

    ``do_lower_case``, ``num_attention_heads`` and ``vocab_file`` override what the
    folder declares or what is guessed (a Google checkpoint does not record
    lower-casing: an uncased vocabulary, one without capital letters, implies it).

    >>> tensorflow_layout("uncased_L-12_H-768_A-12") is None          # no such folder here
    True
    >>> model = read_tensorflow_model("uncased_L-12_H-768_A-12")   # doctest: +SKIP
    >>> model.config.num_hidden_layers, model.do_lower_case           # doctest: +SKIP
    (12, True)
    """
    directory = tensorflow_folder(path)
    layout = tensorflow_layout(directory)
    tf = import_tensorflow(directory)
    if layout == "google":
        shown, state, unused, raw_shapes = _read_google(tf, directory)
        table = GOOGLE_TF_NAMES
        config = BertConfig.from_json_file(directory / "bert_config.json")
        if num_attention_heads is not None:
            config = BertConfig.from_dict({**config.to_dict(), "num_attention_heads": num_attention_heads})
        declared = declared_tokenization(directory, layout)
    else:
        if layout == "tf1-hub":
            shown, state, unused, raw_shapes = _read_tf1_hub(tf, directory)
            declared = declared_tokenization(directory, layout)
            table = GOOGLE_TF_NAMES
        else:
            graphs = SavedModelGraphs(tf, directory)
            shown, state, unused, raw_shapes = _read_tf2_saved_model(graphs)
            declared = declared_tokenization(directory, layout, graphs)
            table = MODEL_GARDEN_TF_NAMES
        config = _inferred_config(state, raw_shapes, directory, shown, num_attention_heads)

    word = state.get("bert.embeddings.word_embeddings.weight")
    if word is not None and word.shape[0] != config.vocab_size:
        raise BertforgeError(
            f"{directory / 'bert_config.json'}: vocab_size {config.vocab_size}, but the checkpoint's "
            f"{standard_name_to_tensorflow('bert.embeddings.word_embeddings.weight', table)} has {word.shape[0]} rows; "
            "the config does not belong to this checkpoint"
        )
    _check_complete(config, state, shown, table)

    declared_vocab, declared_lower = declared
    vocab = chosen_vocab_file(declared_vocab, vocab_file)
    probe = Tokenizer.from_pretrained(vocab)  # the vocabulary alone: its size, and its tokens for the guess
    do_lower_case = chosen_lower_case(directory, layout, declared_lower, do_lower_case, probe.vocab)
    if probe.vocab_size != config.vocab_size:
        raise BertforgeError(
            f"{vocab}: {probe.vocab_size} tokens, but the checkpoint's embedding matrix "
            f"({standard_name_to_tensorflow('bert.embeddings.word_embeddings.weight', table)}) has "
            f"{config.vocab_size} rows; pass the vocab.txt released with this checkpoint"
        )
    return TensorFlowModel(layout=layout, source=shown, config=config, state=state, vocab_file=vocab,
                           do_lower_case=do_lower_case, unused=unused)


# -- writing -------------------------------------------------------------------------------


@dataclass
class Conversion:
    """What ``convert`` wrote and what did not fit."""

    out: Path
    layout: str
    model_class: str
    config: BertConfig
    do_lower_case: bool
    report: LoadReport
    unused: list[str]

    def summary(self) -> str:
        c = self.config
        lines = [
            f"converted {LAYOUT_NAMES[self.layout]} -> {self.out} ({self.model_class}: {c.num_hidden_layers} layers, "
            f"hidden {c.hidden_size}, heads {c.num_attention_heads}, vocab {c.vocab_size}, "
            f"lower-case {'yes' if self.do_lower_case else 'no'})",
        ]
        lines.append(f"not found in the checkpoint, newly initialised: {', '.join(self.report.missing)}"
                     if self.report.missing else "every weight of the model was found")
        if self.unused:
            lines.append(f"not used from the checkpoint: {', '.join(self.unused)}")
        return "\n".join(lines)


def convert(source: str | os.PathLike, out: str | os.PathLike, *, do_lower_case: bool | None = None,
            num_attention_heads: int | None = None, vocab_file: str | os.PathLike | None = None) -> Conversion:
    """Write a TensorFlow BERT as a standard model directory: ``config.json``,
    ``model.safetensors``, ``vocab.txt`` and ``tokenizer.json`` with its lower-casing.

    Every head the checkpoint has is kept (MLM and next-sentence heads, a
    ``run_classifier.py`` classifier). Weights the model needs that the checkpoint
    lacks outside the encoder (a pooler, say) are named in the result and start
    untrained; a missing encoder weight is an error.

    >>> tensorflow_layout(".") is None       # not a TensorFlow folder: nothing to convert
    True
    >>> result = convert("uncased_L-12_H-768_A-12", "bert-base-uncased")   # doctest: +SKIP
    >>> print(result.summary())                                             # doctest: +SKIP
    converted Google BERT checkpoint -> bert-base-uncased (BertForPreTraining: 12 layers, ...)
    """
    out = Path(out)
    folder = tensorflow_source(source)
    # Checked before the (slow) read: a folder that fails here costs nothing.
    if folder is not None and out.resolve() == folder.resolve():
        raise BertforgeError(f"{out}: the output folder is the TensorFlow folder itself; pass another --out")
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        raise BertforgeError(f"{out}: exists and is not an empty folder (files of another model would mix with "
                             "the converted one); pass a new or empty folder for --out")
    found = read_tensorflow_model(source, do_lower_case=do_lower_case, num_attention_heads=num_attention_heads,
                                  vocab_file=vocab_file)
    model_class = found.model_class
    config = found.config
    if model_class is BertForSequenceClassification and config.id2label is None:
        labels = found.state["classifier.weight"].shape[0]
        config = BertConfig.from_dict({**config.to_dict(), "id2label": {i: f"LABEL_{i}" for i in range(labels)}})
    model = model_class(config)
    report = load_state(model, found.state, str(found.source), strict=True)
    tokenizer = found.tokenizer()
    # Written beside the destination and renamed into place: a failed or killed
    # conversion leaves no half-written model directory behind.
    with replacing_folder(out.resolve()) as staging:
        save_pretrained(model, staging, tokenizer=tokenizer)
    return Conversion(out=out, layout=found.layout, model_class=model_class.__name__, config=config,
                      do_lower_case=tokenizer.do_lower_case, report=report, unused=found.unused)
