"""The vocabulary and lower-casing of a TensorFlow BERT folder, without its weights.

Three layouts are recognised, by their file names alone:

- Google's original release: ``bert_config.json``, ``vocab.txt`` and
  ``bert_model.ckpt.{index,data-*}``; it declares no lower-casing, so that is guessed
  from the vocabulary (an uncased one has no capital letters);
- TF Hub TF1 modules: ``tfhub_module.pb``, ``saved_model.pb``, ``variables/`` and
  ``assets/vocab.txt``; the module's ``tokenization_info`` signature names the
  vocabulary and says whether to lower-case;
- TF2 SavedModels of the TF Model Garden's ``BertEncoder`` (TF Hub's ``bert_en_*``
  encoders), whose ``vocab_file`` asset and ``do_lower_case`` variable say the same.

TensorFlow (the ``tensorflow`` extra) reads the two SavedModel layouts: it is imported
only when one is opened, only the graph is parsed (never executed), and of the
checkpoint only the one ``do_lower_case`` variable is read. The checkpoint and graph
readers here are the ones ``bertforge.io.tensorflow`` reads the weights with.

>>> import tempfile
>>> tensorflow_layout(tempfile.mkdtemp()) is None      # an empty folder is no TF model
True
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from bertforge.errors import BertforgeError
from bertforge.text.vocab_files import WEIGHT_FILES, read_vocabulary

log = logging.getLogger(__name__)

LAYOUT_NAMES = {
    "google": "Google BERT checkpoint",
    "tf1-hub": "TF Hub TF1 module",
    "tf2-saved-model": "TF2 SavedModel",
}
INSTALL_HINT = "pip install 'bertforge[tensorflow]'"


# -- finding the layout (no TensorFlow needed) -------------------------------------------


def tensorflow_source(path: str | os.PathLike) -> Path | None:
    """The folder of a TensorFlow BERT given as a folder, one of its files or a checkpoint prefix.

    >>> tensorflow_source("uncased_L-12_H-768_A-12") is None          # no such folder here
    True
    """
    path = Path(path).expanduser()
    if path.is_file():
        path = path.parent
    elif not path.exists() and Path(f"{path}.index").is_file():
        path = path.parent  # .../bert_model.ckpt, the prefix TensorFlow itself takes
    return path if tensorflow_layout(path) else None


def tensorflow_layout(directory: str | os.PathLike) -> str | None:
    """``"google"``, ``"tf1-hub"``, ``"tf2-saved-model"``, or None for anything else
    (a folder that already holds standard weights included).

    >>> tensorflow_layout(".") is None
    True
    """
    directory = Path(directory)
    if not directory.is_dir() or any((directory / name).is_file() for name in WEIGHT_FILES):
        return None
    if (directory / "tfhub_module.pb").is_file():
        return "tf1-hub"
    if (directory / "saved_model.pb").is_file():
        return "tf2-saved-model"
    if (directory / "bert_config.json").is_file() and google_checkpoint(directory) is not None:
        return "google"
    return None


def tensorflow_folder(path: str | os.PathLike) -> Path:
    """:func:`tensorflow_source`, or an error saying what a TensorFlow BERT folder holds."""
    directory = tensorflow_source(path)
    if directory is None:
        raise BertforgeError(
            f"{path}: not a TensorFlow BERT folder; pass a folder with bert_config.json and bert_model.ckpt.*, "
            "a TF Hub module (tfhub_module.pb) or a TF2 SavedModel (saved_model.pb)"
        )
    return directory


def google_checkpoint(directory: Path) -> Path | None:
    """The checkpoint prefix: ``bert_model.ckpt``, the one the ``checkpoint`` file names, or the only one.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> google_checkpoint(folder) is None
    True
    >>> _ = (folder / "model.ckpt-1000.index").write_bytes(b"")
    >>> google_checkpoint(folder).name
    'model.ckpt-1000'
    """
    if (directory / "bert_model.ckpt.index").is_file():
        return directory / "bert_model.ckpt"
    state = directory / "checkpoint"
    if state.is_file():
        named = re.search(r'^model_checkpoint_path:\s*"([^"]+)"', state.read_text(errors="replace"), re.M)
        if named and Path(directory / f"{named.group(1)}.index").is_file():
            return directory / named.group(1)
    indexes = sorted(directory.glob("*.index"))
    return indexes[0].with_suffix("") if len(indexes) == 1 else None


# -- TensorFlow's readers, with one-line errors --------------------------------------------


def import_tensorflow(source: Path):
    """TensorFlow, or an error naming the extra that brings it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off stderr
    try:
        with _native_stderr_silenced():
            import tensorflow as tf
    except ImportError:
        raise BertforgeError(
            f"{source}: reading a TensorFlow checkpoint needs the tensorflow extra: {INSTALL_HINT}"
        ) from None
    return tf


@contextlib.contextmanager
def _native_stderr_silenced():
    """Nothing written to the process's stderr inside, by Python or by native code.

    TensorFlow 2.21's C++ start-up lines (absl's "log messages before
    absl::InitializeLog()", oneDNN, CPU features) go straight to file descriptor 2
    and ignore ``TF_CPP_MIN_LOG_LEVEL``; a failed conversion must still be one line.
    Where stderr is no real file (a notebook, a captured stream) there is nothing to do.
    """
    try:
        descriptor = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(descriptor)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), descriptor)
            yield
    finally:
        os.dup2(saved, descriptor)
        os.close(saved)


def first_line(error: BaseException) -> str:
    """An exception's message cut to its first line (its type when it has none).

    >>> first_line(ValueError("bad magic number\\nat offset 0")), first_line(KeyError())
    ('bad magic number', 'KeyError')
    """
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class TensorFlowCheckpoint:
    """A TensorFlow checkpoint whose failures become one-line errors; ``shown`` names it in them."""

    def __init__(self, tf, prefix: Path, shown: Path):
        self.shown = shown
        try:
            self.reader = tf.train.load_checkpoint(str(prefix))
            self.shapes = self.reader.get_variable_to_shape_map()
        except Exception as error:  # DataLossError, NotFoundError...: the same fix for the user
            raise BertforgeError(
                f"{shown}: cannot read the TensorFlow checkpoint ({first_line(error)}); "
                "the file is damaged or incomplete: fetch it again"
            ) from None

    def variables(self) -> list[tuple[str, Callable[[], np.ndarray]]]:
        """``(name, read)`` for every variable; ``read()`` loads its array when called."""
        return [(key, lambda key=key: self.get(key)) for key in self.shapes]

    def get(self, key: str) -> np.ndarray:
        """One variable's array."""
        try:
            return np.asarray(self.reader.get_tensor(key))
        except Exception as error:
            raise BertforgeError(
                f"{self.shown}: cannot read variable {key} ({first_line(error)}); "
                "the data file is damaged or incomplete: fetch it again"
            ) from None


def saved_model_proto(directory: Path):
    """The parsed ``saved_model.pb`` of ``directory``."""
    import_tensorflow(directory)  # the one-line error without the extra, and no start-up chatter
    from tensorflow.core.protobuf import saved_model_pb2

    path = directory / "saved_model.pb"
    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString(path.read_bytes())
    except Exception as error:
        raise BertforgeError(f"{path}: not a SavedModel ({first_line(error)}); the file is damaged: fetch it again") \
            from None
    if not proto.meta_graphs:
        raise BertforgeError(f"{path}: the SavedModel holds no graph; the file is damaged: fetch it again")
    return proto


class SavedModelGraphs:
    """A TF2 SavedModel's object graph beside its checkpoint's: both name the same
    objects, the first with variable names, the second with checkpoint keys."""

    def __init__(self, tf, directory: Path):
        from tensorflow.core.protobuf import trackable_object_graph_pb2

        proto = saved_model_proto(directory)
        self.meta = proto.meta_graphs[0]
        self.objects = self.meta.object_graph_def
        self.shown = directory / "variables" / "variables.index"
        self.checkpoint = TensorFlowCheckpoint(tf, directory / "variables" / "variables", self.shown)
        if "_CHECKPOINTABLE_OBJECT_GRAPH" not in self.checkpoint.shapes or not self.objects.nodes:
            raise BertforgeError(f"{directory / 'saved_model.pb'}: a TF1 SavedModel that is not a TF Hub module "
                                 "(no tfhub_module.pb, no TF2 object graph); pass the Google checkpoint folder it "
                                 "was exported from")
        self.stored = trackable_object_graph_pb2.TrackableObjectGraph()
        self.stored.ParseFromString(self.checkpoint.get("_CHECKPOINTABLE_OBJECT_GRAPH").item())
        self.root = {child.local_name: child.node_id for child in self.objects.nodes[0].children}
        self.stored_root = {child.local_name: self.stored.nodes[child.node_id]
                            for child in self.stored.nodes[0].children}


# -- what each layout declares ---------------------------------------------------------------


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
    proto = saved_model_proto(directory)
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


def _tf2_tokenization(graphs: SavedModelGraphs, directory: Path):
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


def declared_tokenization(directory: Path, layout: str,
                          graphs: SavedModelGraphs | None = None) -> tuple[Path, bool | None]:
    """The vocabulary file a folder names (or its usual place) and the lower-casing it
    declares (None: not declared). Reads no weights: only the graph and, for a TF2
    SavedModel, its one ``do_lower_case`` variable (from ``graphs`` when given)."""
    if layout == "google":  # Google's folders declare nothing; vocab.txt sits beside the checkpoint
        return directory / "vocab.txt", None
    tf = import_tensorflow(directory)
    if layout == "tf1-hub":
        vocab, lower = _tf1_hub_tokenization(tf, directory)
    else:
        vocab, lower = _tf2_tokenization(graphs or SavedModelGraphs(tf, directory), directory)
    if vocab is None or not vocab.is_file():
        vocab = directory / "assets" / "vocab.txt"
    return vocab, lower


# -- deciding -----------------------------------------------------------------------------------


def chosen_vocab_file(declared_vocab: Path, vocab_file: str | os.PathLike | None) -> Path:
    """The vocabulary to use: the one passed, else the one the folder declares; it must exist.

    >>> chosen_vocab_file(Path("no/such/vocab.txt"), None)
    Traceback (most recent call last):
    ...
    bertforge.errors.BertforgeError: no/such/vocab.txt: no vocabulary file beside the checkpoint; pass the model's vocab.txt (--vocab FILE)
    """
    vocab = Path(vocab_file) if vocab_file is not None else declared_vocab
    if not vocab.is_file():
        raise BertforgeError(f"{vocab}: no vocabulary file beside the checkpoint; pass the model's vocab.txt "
                             "(--vocab FILE)")
    return vocab


def vocab_lower_cases(vocab) -> bool:
    """Guess from the vocabulary (its tokens): an uncased one has (almost) no capital letters.

    >>> vocab_lower_cases({"[CLS]": 0, "the": 1, "cat": 2}), vocab_lower_cases({"The": 0, "cat": 1})
    (True, False)
    """
    tokens = [t for t in vocab if not (t.startswith("[") and t.endswith("]"))]
    capitals = sum(any(ch.isupper() for ch in token) for token in tokens)
    return capitals <= 0.01 * max(len(tokens), 1)


def chosen_lower_case(directory: Path, layout: str, declared: bool | None, do_lower_case: bool | None,
                      vocab) -> bool:
    """The lower-casing to use: the argument, then what the folder declares, then a guess
    from ``vocab`` (its tokens).

    >>> chosen_lower_case(Path("ckpt"), "google", None, None, {"The": 0, "cat": 1})
    False
    >>> chosen_lower_case(Path("ckpt"), "google", None, True, {"The": 0, "cat": 1})
    True
    """
    if do_lower_case is None:
        do_lower_case = declared
    if do_lower_case is None:
        do_lower_case = vocab_lower_cases(vocab)
        if layout != "google":
            log.warning("%s: the model does not declare do_lower_case; %s, from its vocabulary", directory,
                        "lower-casing" if do_lower_case else "keeping case")
    return bool(do_lower_case)


def tensorflow_vocabulary(path: str | os.PathLike, *, do_lower_case: bool | None = None,
                          vocab_file: str | os.PathLike | None = None) -> tuple[Path, bool]:
    """The vocabulary file and lower-casing of a TensorFlow BERT folder, without reading its weights.

    A Google checkpoint folder needs no TensorFlow for this (its ``vocab.txt`` sits
    beside the checkpoint; lower-casing is guessed from the vocabulary, as converting
    it does); a TF Hub module or a TF2 SavedModel declares its vocabulary asset and
    lower-casing in its graph, which TensorFlow reads. ``Tokenizer.from_pretrained``
    opens such a folder through this.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> (folder / "bert_config.json").write_text("{}")
    2
    >>> (folder / "bert_model.ckpt.index").write_bytes(b"")
    0
    >>> (folder / "vocab.txt").write_text("[PAD]\\n[UNK]\\n[CLS]\\n[SEP]\\n[MASK]\\nThe\\ncat\\n")
    39
    >>> vocab, lower = tensorflow_vocabulary(folder)
    >>> vocab.name, lower                       # capitals in the vocabulary: cased
    ('vocab.txt', False)
    """
    directory = tensorflow_folder(path)
    layout = tensorflow_layout(directory)
    declared_vocab, declared_lower = declared_tokenization(directory, layout)
    vocab = chosen_vocab_file(declared_vocab, vocab_file)
    lower = chosen_lower_case(directory, layout, declared_lower, do_lower_case, read_vocabulary(vocab))
    return vocab, lower
