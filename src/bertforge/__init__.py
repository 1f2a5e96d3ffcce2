"""bertforge: BERT on your own data.

>>> import bertforge
>>> config = bertforge.BertConfig.preset("tiny", vocab_size=1000)
>>> model = bertforge.BertModel(config)
>>> config.num_hidden_layers, config.hidden_size
(2, 128)
"""

from .checkpoints import LoadReport, load_pretrained, save_pretrained
from .config import BertConfig
from .errors import BertforgeError
from .features import Features, InputExample, convert_examples_to_features, convert_single_example
from .layer import BertLayer
from .model import BertForMaskedLM, BertForPreTraining, BertForSequenceClassification, BertModel
from .tokenization import Tokenizer

__version__ = "0.1.0"

__all__ = [
    "BertConfig", "BertModel", "BertForPreTraining", "BertForMaskedLM", "BertForSequenceClassification",
    "BertLayer", "load_pretrained", "save_pretrained", "LoadReport", "Tokenizer", "InputExample",
    "Features", "convert_single_example", "convert_examples_to_features", "BertforgeError",
]
