"""BertLayer for Keras 3: a pretrained BERT inside a functional Keras model.

The Keras layer hosts :class:`bertforge.BertLayer` (the PyTorch layer) and shares
its parameters with Keras, so ``model.fit`` trains exactly the top
``fine_tune_layers`` blocks and ``model.save`` writes every weight into the
``.keras`` file. It runs on Keras' torch backend only; when ``keras`` has not been
imported yet and ``KERAS_BACKEND`` is unset, importing this module selects it.

Importing ``bertforge.keras`` registers the layer with Keras (as
``bertforge>BertLayer``): import it before ``keras.saving.load_model``, or call
:func:`load_model` here. The saved layer carries the BERT config, not the path it
was loaded from, so a ``.keras`` file reloads on a machine without the original
model directory.

>>> import keras                                            # doctest: +SKIP
>>> from bertforge.keras import BertLayer                   # doctest: +SKIP
>>> ids, mask, segments = (keras.Input((32,), dtype="int32") for _ in range(3))  # doctest: +SKIP
>>> pooled = BertLayer(model_dir, fine_tune_layers=2, output="pooled")([ids, mask, segments])  # doctest: +SKIP
>>> model = keras.Model([ids, mask, segments], keras.layers.Dense(6, activation="softmax")(pooled))  # doctest: +SKIP

The seed's keywords work too: ``BertLayer(n_fine_tune_layers=3, bert_path=model_dir)``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from bertforge.errors import BertforgeError

__all__ = ["BertLayer", "load_model"]

_layer_class = None  # built on first use: defining it needs keras


def _seed_arguments(pretrained=None, fine_tune_layers=None, n_fine_tune_layers=None, bert_path=None):
    """``(pretrained, fine_tune_layers)`` from our keywords or the seed's.

    >>> _seed_arguments(bert_path="my-bert", n_fine_tune_layers=3)
    ('my-bert', 3)
    >>> _seed_arguments("my-bert")
    ('my-bert', 'all')
    >>> _seed_arguments("my-bert", bert_path="other")
    Traceback (most recent call last):
    ...
    bertforge.errors.BertforgeError: BertLayer got both pretrained and bert_path; pass one of them
    """
    if bert_path is not None:
        if pretrained is not None:
            raise BertforgeError("BertLayer got both pretrained and bert_path; pass one of them")
        pretrained = bert_path
    if pretrained is None:
        raise BertforgeError("BertLayer needs pretrained: a BERT model directory or a loaded bertforge BertModel")
    if n_fine_tune_layers is not None:
        if fine_tune_layers is not None:
            raise BertforgeError(
                "BertLayer got both fine_tune_layers and n_fine_tune_layers; pass one of them")
        fine_tune_layers = n_fine_tune_layers
    return pretrained, "all" if fine_tune_layers is None else fine_tune_layers


def _import_keras():
    """``keras`` on the torch backend, or one line that says what to do."""
    if "keras" not in sys.modules:
        # Keras picks its backend once, at first import; default to the one this layer needs.
        os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError:
        raise BertforgeError(
            "bertforge.keras needs the keras extra: pip install 'bertforge[keras]'") from None
    backend = keras.backend.backend()
    if backend != "torch":
        raise BertforgeError(
            f"bertforge.keras needs Keras' torch backend but Keras runs on {backend!r}; "
            "set KERAS_BACKEND=torch before keras is first imported")
    return keras


def _define_layer_class():
    global _layer_class
    if _layer_class is not None:
        return _layer_class
    keras = _import_keras()

    import torch

    from bertforge.model.config import BertConfig
    from bertforge.model.layer import BertLayer as TorchBertLayer
    from bertforge.model.bert import BertModel

    @keras.saving.register_keras_serializable(package="bertforge")
    class BertLayer(keras.layers.Layer):
        """A pretrained BERT as a Keras layer that fine-tunes only its top N blocks.

        Called on ``[input_ids, input_mask, segment_ids]`` (integer tensors of
        shape ``(batch, length)``; the mask and segments may be left out). Returns
        ``(batch, length, hidden)`` for ``output="sequence"``, else ``(batch, hidden)``.

        ``pretrained`` (or the seed's ``bert_path``): a model directory, or a loaded
        bertforge ``BertModel`` (shared, not copied). ``fine_tune_layers`` (or the
        seed's ``n_fine_tune_layers``): how many top encoder blocks train; ``0``
        freezes BERT, ``"all"`` (the default) trains everything. ``output``: ``"sequence"``,
        ``"pooled"``, ``"cls"`` or ``"mean"``. Setting ``layer.trainable = False``
        freezes it all; setting it back to True restores the top-N choice.

        >>> bert = BertLayer(model_dir, fine_tune_layers=2, output="pooled")  # doctest: +SKIP
        >>> bert.trainable_layers                                            # doctest: +SKIP
        [4, 5]
        """

        def __init__(self, pretrained=None, fine_tune_layers=None, output="sequence", *,
                     n_fine_tune_layers=None, bert_path=None, **kwargs):
            super().__init__(**kwargs)
            pretrained, fine_tune_layers = _seed_arguments(pretrained, fine_tune_layers,
                                                           n_fine_tune_layers, bert_path)
            torch_layer = TorchBertLayer(pretrained, fine_tune_layers=fine_tune_layers, output=output)
            self.fine_tune_layers = fine_tune_layers
            self.output_kind = output
            # The wrapper hands Keras the torch parameters themselves (no copies), each
            # trainable exactly when the torch layer lets it learn.
            self.encoder = keras.layers.TorchModuleWrapper(torch_layer, name="bert")
            if not self.trainable:
                self.trainable = False  # reach the wrapper created after Layer.__init__
            self.built = True  # all weights exist already

        @property
        def torch_layer(self) -> TorchBertLayer:
            """The hosted :class:`bertforge.BertLayer` (a ``torch.nn.Module``)."""
            return self.encoder.module

        @property
        def hidden_size(self) -> int:
            return self.torch_layer.hidden_size

        @property
        def trainable_layers(self) -> list[int]:
            return self.torch_layer.trainable_layers if self.trainable else []

        def call(self, inputs, training=None):
            if not isinstance(inputs, (list, tuple)):
                inputs = [inputs]
            if not 1 <= len(inputs) <= 3:
                raise BertforgeError(
                    f"BertLayer takes [input_ids, input_mask, segment_ids], got {len(inputs)} inputs")
            # The seed fed ids through float keras.Input layers; float32 holds every id exactly.
            input_ids, input_mask, segment_ids = (_integer_ids(x) for x in (list(inputs) + [None, None])[:3])
            # Keras passes training=None outside fit: that means inference (no dropout). A layer
            # set trainable=False runs as inference too, as Keras' own frozen layers do.
            self.torch_layer.train(bool(training) and self.trainable)
            return self.torch_layer(input_ids, input_mask, segment_ids)

        def compute_output_shape(self, input_shape):
            if isinstance(input_shape, (list, tuple)) and input_shape and isinstance(input_shape[0], (list, tuple)):
                input_shape = input_shape[0]
            batch, length = tuple(input_shape)[:2]
            if self.output_kind == "sequence":
                return batch, length, self.hidden_size
            return batch, self.hidden_size

        def get_config(self):
            config = super().get_config()
            bert = self.torch_layer.bert
            config.update(
                fine_tune_layers=self.fine_tune_layers,
                output=self.output_kind,
                # The architecture, not the path: the .keras file holds the weights.
                bert_config=bert.config.to_dict(),
                pooler=bert.pooler is not None,
            )
            return config

        @classmethod
        def from_config(cls, config):
            config = dict(config)
            try:
                bert_config = BertConfig.from_dict(config.pop("bert_config"))
            except KeyError:
                raise BertforgeError(
                    "BertLayer config has no bert_config; save the model again with bertforge.keras") from None
            # Random weights of the right shapes: load_model fills them from the file.
            skeleton = BertModel(bert_config, add_pooling_layer=config.pop("pooler", True))
            return cls(pretrained=skeleton, **config)

    def _integer_ids(values):
        if values is None:
            return None
        values = torch.as_tensor(values)
        return values.long() if values.is_floating_point() else values

    BertLayer.__module__ = "bertforge.keras"  # the public module saved files and errors name
    BertLayer.__qualname__ = "BertLayer"
    _layer_class = BertLayer
    return BertLayer


def load_model(path, **kwargs):
    """``keras.saving.load_model`` with :class:`BertLayer` registered first.

    >>> model = load_model("trec.keras")  # doctest: +SKIP
    """
    _define_layer_class()
    keras = _import_keras()
    if not Path(path).is_file():
        raise BertforgeError(f"{path}: no such file; pass the .keras file model.save wrote")
    return keras.saving.load_model(path, **kwargs)


def __getattr__(name):
    # The class needs keras, so it is defined on first access rather than at import.
    if name == "BertLayer":
        return _define_layer_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _register_when_installed() -> None:
    """Register the layer at import, so keras.saving.load_model finds it by name."""
    if "keras" not in sys.modules and importlib.util.find_spec("keras") is None:
        return  # without the extra the module still imports; BertLayer says what to install
    try:
        _define_layer_class()
    except BertforgeError:
        pass  # another Keras backend is active: using BertLayer raises the one-line error


_register_when_installed()
