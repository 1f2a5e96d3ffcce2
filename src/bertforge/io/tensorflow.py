"""TensorFlow BERT checkpoints to a standard model directory.

Three layouts are read:

- Google's original release: a folder with ``bert_config.json``, ``vocab.txt`` and
  ``bert_model.ckpt.{index,data-*}`` (TF1 names ``bert/encoder/layer_N/...``, ``cls/...``);
- TF Hub TF1 modules: ``tfhub_module.pb``, ``saved_model.pb``, ``variables/`` and
  ``assets/vocab.txt``; the module's ``tokenization_info`` signature names the
  vocabulary and says whether to lower-case;
- TF2 SavedModels of the TF Model Garden's ``BertEncoder`` (TF Hub's ``bert_en_*``
  encoders), whose ``vocab_file`` asset and ``do_lower_case`` variable say the same.

The weight-name maps are ``GOOGLE_TF_NAMES`` and ``MODEL_GARDEN_TF_NAMES`` in
``checkpoints.py``. TensorFlow (the ``tensorflow`` extra) reads the files; it is
imported only when a conversion runs, and a SavedModel's graph is never executed:
its variables are found through the object graph stored beside them.

>>> import tempfile
>>> tensorflow_layout(tempfile.mkdtemp()) is None      # an empty folder is no TF model
True
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

from bertforge.io.model_dir import (GOOGLE_TF_NAMES, MODEL_GARDEN_TF_NAMES, WEIGHT_FILES, LoadReport, load_state,
                          save_pretrained, standard_name_to_tensorflow, tensorflow_name_to_standard)
from bertforge.model.config import BertConfig
from bertforge.errors import BertforgeError
from bertforge.files import replacing_folder
from bertforge.model.bert import (BertForMaskedLM, BertForPreTraining, BertForSequenceClassification, BertModel,
                    PreTrainedBert)

log = logging.getLogger(__name__)

LAYOUT_NAMES = {
    "google": "Google BERT checkpoint",
    "tf1-hub": "TF Hub TF1 module",
    "tf2-saved-model": "TF2 SavedModel",
}
INSTALL_HINT = "pip install 'bertforge[tensorflow]'"
# Optimizer slots and counters that fine-tuned checkpoints carry beside the weights.
TRAINING_STATE = re.compile(r"(^|/)(global_step|adam_[mv]|Adam(_\d+)?|beta[12]_power|Momentum"
                            r"|_CHECKPOINTABLE_OBJECT_GRAPH)$")
BACKBONE = ("bert.embeddings.", "bert.encoder.")


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

    def tokenizer(self):
        from bertforge.text.tokenizer import Tokenizer

        return Tokenizer.from_pretrained(self.vocab_file, do_lower_case=self.do_lower_case)


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


# -- finding the layout (no TensorFlow needed) -------------------------------------------


def tensorflow_source(path: str | os.PathLike) -> Path | None:
    """The folder of a TensorFlow BERT given as a folder, one of its files or a checkpoint prefix."""
    path = Path(path).expanduser()
    if path.is_file():
        path = path.parent
    elif not path.exists() and Path(f"{path}.index").is_file():
        path = path.parent  # .../bert_model.ckpt, the prefix TensorFlow itself takes
    return path if tensorflow_layout(path) else None


def tensorflow_layout(directory: str | os.PathLike) -> str | None:
    """``"google"``, ``"tf1-hub"``, ``"tf2-saved-model"``, or None for anything else
    (a folder that already holds standard weights included)."""
    directory = Path(directory)
    if not directory.is_dir() or any((directory / name).is_file() for name in WEIGHT_FILES):
        return None
    if (directory / "tfhub_module.pb").is_file():
        return "tf1-hub"
    if (directory / "saved_model.pb").is_file():
        return "tf2-saved-model"
    if (directory / "bert_config.json").is_file() and _google_checkpoint(directory) is not None:
        return "google"
    return None


def _google_checkpoint(directory: Path) -> Path | None:
    """The checkpoint prefix: ``bert_model.ckpt``, the one the ``checkpoint`` file names, or the only one."""
    if (directory / "bert_model.ckpt.index").is_file():
        return directory / "bert_model.ckpt"
    state = directory / "checkpoint"
    if state.is_file():
        named = re.search(r'^model_checkpoint_path:\s*"([^"]+)"', state.read_text(errors="replace"), re.M)
        if named and Path(directory / f"{named.group(1)}.index").is_file():
            return directory / named.group(1)
    indexes = sorted(directory.glob("*.index"))
    return indexes[0].with_suffix("") if len(indexes) == 1 else None


# -- reading ------------------------------------------------------------------------------


def _tensorflow(source: Path):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off stderr
    try:
        import tensorflow as tf
    except ImportError:
        raise BertforgeError(
            f"{source}: reading a TensorFlow checkpoint needs the tensorflow extra: {INSTALL_HINT}"
        ) from None
    return tf


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class _Checkpoint:
    """A TensorFlow checkpoint whose failures become one-line errors."""

    def __init__(self, tf, prefix: Path, shown: Path):
        self.shown = shown
        try:
            self.reader = tf.train.load_checkpoint(str(prefix))
            self.shapes = self.reader.get_variable_to_shape_map()
        except Exception as error:  # DataLossError, NotFoundError...: the same fix for the user
            raise BertforgeError(
                f"{shown}: cannot read the TensorFlow checkpoint ({_first_line(error)}); "
                "the file is damaged or incomplete: fetch it again"
            ) from None

    def variables(self) -> list[tuple[str, Callable[[], np.ndarray]]]:
        return [(key, lambda key=key: self.get(key)) for key in self.shapes]

    def get(self, key: str) -> np.ndarray:
        try:
            return np.asarray(self.reader.get_tensor(key))
        except Exception as error:
            raise BertforgeError(
                f"{self.shown}: cannot read variable {key} ({_first_line(error)}); "
                "the data file is damaged or incomplete: fetch it again"
            ) from None


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
    prefix = _google_checkpoint(directory)
    shown = Path(f"{prefix}.index")
    checkpoint = _Checkpoint(tf, prefix, shown)
    state, unused, raw_shapes = _standard_weights(checkpoint.variables(), GOOGLE_TF_NAMES, shown,
                                                  strip_prefixes=False)
    return shown, state, unused, raw_shapes


def _saved_model_proto(directory: Path):
    from tensorflow.core.protobuf import saved_model_pb2

    path = directory / "saved_model.pb"
    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString(path.read_bytes())
    except Exception as error:
        raise BertforgeError(f"{path}: not a SavedModel ({_first_line(error)}); the file is damaged: fetch it again") \
            from None
    if not proto.meta_graphs:
        raise BertforgeError(f"{path}: the SavedModel holds no graph; the file is damaged: fetch it again")
    return proto


def _asset_files(meta) -> dict[str, str]:
    """Tensor name -> asset file name, from the SavedModel's table and TF Hub's collection."""
    from tensorflow.core.protobuf import meta_graph_pb2

    files = {asset.tensor_info.name: asset.filename for asset in meta.asset_file_def}
    collection = meta.collection_def.get("saved_model_assets")
    if collection is not None:
        for packed in collection.any_list.value:
            asset = meta_graph_pb2.AssetFileDef()
            if packed.Unpack(asset):
                files.setdefault(asset.tensor_info.name, asset.filename)
    return files


def _constant(tf, graph_def, tensor_name: str):
    """The value of a constant tensor in a graph (through Identity ops), or None."""
    nodes = {node.name: node for node in graph_def.node}
    node = nodes.get(tensor_name.split(":")[0])
    while node is not None and node.op in ("Identity", "StopGradient") and node.input:
        node = nodes.get(node.input[0].lstrip("^").split(":")[0])
    if node is None or node.op != "Const":
        return None, None
    return tf.make_ndarray(node.attr["value"].tensor), node.name + ":0"


def _tf1_hub_tokenization(tf, directory: Path):
    """The vocabulary file and lower-casing a TF Hub module declares (either may be None)."""
    proto = _saved_model_proto(directory)
    metas = [meta for meta in proto.meta_graphs if "tokenization_info" in meta.signature_def]
    vocab_file = do_lower_case = None
    if not metas:
        log.warning("%s: no tokenization_info signature; using assets/vocab.txt", directory)
        return vocab_file, do_lower_case
    # The inference graph (no tags) before the training one ({"train"}).
    meta = min(metas, key=lambda m: len(m.meta_info_def.tags))
    outputs = meta.signature_def["tokenization_info"].outputs
    assets = _asset_files(meta)
    if "vocab_file" in outputs:
        value, const_name = _constant(tf, meta.graph_def, outputs["vocab_file"].name)
        filename = assets.get(outputs["vocab_file"].name) or assets.get(const_name)
        if filename is None and value is not None:
            filename = os.path.basename(value.item().decode("utf-8"))
        if filename:
            vocab_file = directory / "assets" / filename
    if "do_lower_case" in outputs:
        value, _ = _constant(tf, meta.graph_def, outputs["do_lower_case"].name)
        do_lower_case = None if value is None else bool(value)
    return vocab_file, do_lower_case


def _read_tf1_hub(tf, directory: Path):
    shown = directory / "variables" / "variables.index"
    checkpoint = _Checkpoint(tf, directory / "variables" / "variables", shown)
    state, unused, raw_shapes = _standard_weights(checkpoint.variables(), GOOGLE_TF_NAMES, shown,
                                                  strip_prefixes=False)
    return shown, state, unused, raw_shapes


class _SavedModelGraphs:
    """A TF2 SavedModel's object graph beside its checkpoint's: both name the same
    objects, the first with variable names, the second with checkpoint keys."""

    def __init__(self, tf, directory: Path):
        from tensorflow.core.protobuf import trackable_object_graph_pb2

        proto = _saved_model_proto(directory)
        self.meta = proto.meta_graphs[0]
        self.objects = self.meta.object_graph_def
        self.shown = directory / "variables" / "variables.index"
        self.checkpoint = _Checkpoint(tf, directory / "variables" / "variables", self.shown)
        if "_CHECKPOINTABLE_OBJECT_GRAPH" not in self.checkpoint.shapes or not self.objects.nodes:
            raise BertforgeError(f"{directory / 'saved_model.pb'}: a TF1 SavedModel that is not a TF Hub module "
                                 "(no tfhub_module.pb, no TF2 object graph); pass the Google checkpoint folder it "
                                 "was exported from")
        self.stored = trackable_object_graph_pb2.TrackableObjectGraph()
        self.stored.ParseFromString(self.checkpoint.get("_CHECKPOINTABLE_OBJECT_GRAPH").item())
        self.root = {child.local_name: child.node_id for child in self.objects.nodes[0].children}
        self.stored_root = {child.local_name: self.stored.nodes[child.node_id]
                            for child in self.stored.nodes[0].children}


def _tf2_tokenization(graphs: _SavedModelGraphs, directory: Path):
    """The vocabulary asset and lower-casing variable a Model Garden encoder keeps (either may be None)."""
    vocab_file = do_lower_case = None
    root, nodes = graphs.root, graphs.objects.nodes
    if "vocab_file" in root and nodes[root["vocab_file"]].WhichOneof("kind") == "asset":
        index = nodes[root["vocab_file"]].asset.asset_file_def_index
        vocab_file = directory / "assets" / graphs.meta.asset_file_def[index].filename
    if "do_lower_case" in graphs.stored_root:
        value = [a.checkpoint_key for a in graphs.stored_root["do_lower_case"].attributes
                 if a.name == "VARIABLE_VALUE"]
        if value:
            do_lower_case = bool(graphs.checkpoint.get(value[0]))
    return vocab_file, do_lower_case


def _read_tf2_saved_model(graphs: _SavedModelGraphs):
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


# -- config, vocabulary, lower-casing ----------------------------------------------------


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


def _vocab_lower_cases(vocab: dict[str, int]) -> bool:
    """Guess from the vocabulary: an uncased one has (almost) no capital letters.

    >>> _vocab_lower_cases({"[CLS]": 0, "the": 1, "cat": 2}), _vocab_lower_cases({"The": 0, "cat": 1})
    (True, False)
    """
    tokens = [t for t in vocab if not (t.startswith("[") and t.endswith("]"))]
    capitals = sum(any(ch.isupper() for ch in token) for token in tokens)
    return capitals <= 0.01 * max(len(tokens), 1)


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


def _folder(path: str | os.PathLike) -> Path:
    directory = tensorflow_source(path)
    if directory is None:
        raise BertforgeError(
            f"{path}: not a TensorFlow BERT folder; pass a folder with bert_config.json and bert_model.ckpt.*, "
            "a TF Hub module (tfhub_module.pb) or a TF2 SavedModel (saved_model.pb)"
        )
    return directory


def _declared_tokenization(directory: Path, layout: str, graphs: _SavedModelGraphs | None = None):
    """The vocabulary file a folder names (or its usual place) and the lower-casing it
    declares (None: not declared). Reads no weights: only the graph and, for a TF2
    SavedModel, its one ``do_lower_case`` variable."""
    if layout == "google":  # Google's folders declare nothing; vocab.txt sits beside the checkpoint
        return directory / "vocab.txt", None
    tf = _tensorflow(directory)
    if layout == "tf1-hub":
        vocab, lower = _tf1_hub_tokenization(tf, directory)
    else:
        vocab, lower = _tf2_tokenization(graphs or _SavedModelGraphs(tf, directory), directory)
    if vocab is None or not vocab.is_file():
        vocab = directory / "assets" / "vocab.txt"
    return vocab, lower


def _resolved_tokenization(directory: Path, layout: str, declared, do_lower_case: bool | None,
                           vocab_file: str | os.PathLike | None):
    """The vocabulary file, the lower-casing to use and a tokenizer over that vocabulary
    (for its size): arguments first, then what the folder declares, then a guess from
    the vocabulary."""
    from bertforge.text.tokenizer import Tokenizer

    declared_vocab, declared_lower = declared
    vocab = Path(vocab_file) if vocab_file is not None else declared_vocab
    if not vocab.is_file():
        raise BertforgeError(f"{vocab}: no vocabulary file beside the checkpoint; pass the model's vocab.txt "
                             "(--vocab FILE)")
    probe = Tokenizer.from_pretrained(vocab)
    if do_lower_case is None:
        do_lower_case = declared_lower
    if do_lower_case is None:
        do_lower_case = _vocab_lower_cases(probe.vocab)
        if layout != "google":
            log.warning("%s: the model does not declare do_lower_case; %s, from its vocabulary", directory,
                        "lower-casing" if do_lower_case else "keeping case")
    return vocab, bool(do_lower_case), probe


def tensorflow_tokenizer(path: str | os.PathLike, *, do_lower_case: bool | None = None,
                         vocab_file: str | os.PathLike | None = None):
    """The tokenizer of a TensorFlow BERT folder, without reading its weights.

    A Google checkpoint folder needs no TensorFlow for this (its ``vocab.txt`` sits
    beside the checkpoint; lower-casing is guessed from the vocabulary, as
    ``read_tensorflow_model`` does); a TF Hub module or a TF2 SavedModel declares its
    vocabulary asset and lower-casing in its graph, which TensorFlow reads.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> (folder / "bert_config.json").write_text("{}")
    2
    >>> (folder / "bert_model.ckpt.index").write_bytes(b"")
    0
    >>> (folder / "vocab.txt").write_text("[PAD]\\n[UNK]\\n[CLS]\\n[SEP]\\n[MASK]\\nThe\\ncat\\n")
    39
    >>> tensorflow_tokenizer(folder).do_lower_case          # capitals in the vocabulary: cased
    False
    """
    from bertforge.text.tokenizer import Tokenizer

    directory = _folder(path)
    layout = tensorflow_layout(directory)
    vocab, lower, _ = _resolved_tokenization(directory, layout, _declared_tokenization(directory, layout),
                                             do_lower_case, vocab_file)
    return Tokenizer.from_pretrained(vocab, do_lower_case=lower)


def read_tensorflow_model(path: str | os.PathLike, *, do_lower_case: bool | None = None,
                          num_attention_heads: int | None = None,
                          vocab_file: str | os.PathLike | None = None) -> TensorFlowModel:
    """Read a TensorFlow BERT folder (any of the three layouts) into standard-named tensors.

    ``do_lower_case``, ``num_attention_heads`` and ``vocab_file`` override what the
    folder declares or what is guessed (a Google checkpoint does not record
    lower-casing: an uncased vocabulary, one without capital letters, implies it).

    >>> tensorflow_source("uncased_L-12_H-768_A-12") is None          # no such folder here
    True
    >>> model = read_tensorflow_model("uncased_L-12_H-768_A-12")   # doctest: +SKIP
    >>> model.config.num_hidden_layers, model.do_lower_case           # doctest: +SKIP
    (12, True)
    """
    directory = _folder(path)
    layout = tensorflow_layout(directory)
    tf = _tensorflow(directory)
    if layout == "google":
        shown, state, unused, raw_shapes = _read_google(tf, directory)
        table = GOOGLE_TF_NAMES
        config = BertConfig.from_json_file(directory / "bert_config.json")
        if num_attention_heads is not None:
            config = BertConfig.from_dict({**config.to_dict(), "num_attention_heads": num_attention_heads})
        declared = _declared_tokenization(directory, layout)
    else:
        if layout == "tf1-hub":
            shown, state, unused, raw_shapes = _read_tf1_hub(tf, directory)
            declared = _declared_tokenization(directory, layout)
            table = GOOGLE_TF_NAMES
        else:
            graphs = _SavedModelGraphs(tf, directory)
            shown, state, unused, raw_shapes = _read_tf2_saved_model(graphs)
            declared = _declared_tokenization(directory, layout, graphs)
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

    vocab, do_lower_case, probe = _resolved_tokenization(directory, layout, declared, do_lower_case, vocab_file)
    if probe.vocab_size != config.vocab_size:
        raise BertforgeError(
            f"{vocab}: {probe.vocab_size} tokens, but the checkpoint's embedding matrix "
            f"({standard_name_to_tensorflow('bert.embeddings.word_embeddings.weight', table)}) has "
            f"{config.vocab_size} rows; pass the vocab.txt released with this checkpoint"
        )
    return TensorFlowModel(layout=layout, source=shown, config=config, state=state, vocab_file=vocab,
                           do_lower_case=do_lower_case, unused=unused)


# -- writing -------------------------------------------------------------------------------


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
