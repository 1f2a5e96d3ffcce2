"""bertforge: BERT on your own data.

The public names below are imported on first use, so ``import bertforge`` (and the
torch-free text layer behind ``bertforge.Tokenizer``) costs no torch import.

>>> import bertforge
>>> config = bertforge.BertConfig.preset("tiny", vocab_size=1000)
>>> model = bertforge.BertModel(config)
>>> config.num_hidden_layers, config.hidden_size
(2, 128)
"""

import importlib

__version__ = "0.1.0"

# public name -> the module that defines it; read by __getattr__ below.
_PUBLIC = {
    "BertforgeError": "bertforge.errors",
    "Tokenizer": "bertforge.text.tokenizer",
    "Features": "bertforge.text.features",
    "InputExample": "bertforge.text.features",
    "convert_single_example": "bertforge.text.features",
    "convert_examples_to_features": "bertforge.text.features",
    "BertConfig": "bertforge.model.config",
    "BertModel": "bertforge.model.bert",
    "BertForPreTraining": "bertforge.model.heads",
    "BertForMaskedLM": "bertforge.model.heads",
    "BertForSequenceClassification": "bertforge.model.heads",
    "BertLayer": "bertforge.model.layer",
    "load_pretrained": "bertforge.io.load",
    "finetune": "bertforge.apps.finetune",
    "Predictor": "bertforge.apps.predictor",
    "Classifier": "bertforge.apps.predictor",
    "Embedder": "bertforge.apps.embedding",
    "save_pretrained": "bertforge.io.model_dir",
    "LoadReport": "bertforge.io.model_dir",
}

__all__ = list(_PUBLIC)


def __getattr__(name: str):
    try:
        module = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module 'bertforge' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
