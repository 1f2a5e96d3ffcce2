"""BertConfig: the shape of a BERT network, as written in `config.json`.

The field names are the ones Hugging Face's `config.json` and Google's
`bert_config.json` share, so both files load unchanged. Fields this class does not
know (``architectures``, ``transformers_version``...) are kept in ``extra`` and
written back, so a round trip loses nothing.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bertforge.errors import BertforgeError

ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu", "swish")

# Sizes of the models Google released (layers, hidden); heads = hidden / 64 and
# intermediate = 4 * hidden, as in the release.
PRESETS = {
    "tiny": (2, 128),
    "mini": (4, 256),
    "small": (4, 512),
    "medium": (8, 512),
    "base": (12, 768),
    "large": (24, 1024),
}


@dataclass
class BertConfig:
    """Sizes and settings of a BERT network.

    >>> config = BertConfig(vocab_size=8000, hidden_size=256, num_hidden_layers=4,
    ...                     num_attention_heads=4, intermediate_size=1024)
    >>> config.head_size
    64
    >>> BertConfig.preset("mini", vocab_size=8000).num_hidden_layers
    4
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    classifier_dropout: float | None = None
    id2label: dict[int, str] | None = None
    problem_type: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.id2label is not None:
            self.id2label = {int(key): str(value) for key, value in self.id2label.items()}
        self.validate()

    # -- checks -----------------------------------------------------------------

    def validate(self) -> None:
        """Raise one clear error for a combination that cannot build a network."""
        positive = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                    "intermediate_size", "max_position_embeddings", "type_vocab_size")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise BertforgeError(f"config: {name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise BertforgeError(
                f"config: hidden_size {self.hidden_size} is not divisible by "
                f"num_attention_heads {self.num_attention_heads}; pick heads that divide it"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise BertforgeError(
                f"config: hidden_act {self.hidden_act!r} is not supported; use one of {', '.join(ACTIVATIONS)}"
            )
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise BertforgeError(f"config: {name} must be in [0, 1), got {value}")

    def check_sequence_length(self, length: int) -> None:
        """Fail clearly when sequences are longer than the position table."""
        if length > self.max_position_embeddings:
            raise BertforgeError(
                f"sequence length {length} is above the model's {self.max_position_embeddings} positions; "
                f"use max_seq_length <= {self.max_position_embeddings}"
            )

    # -- derived ----------------------------------------------------------------

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def num_labels(self) -> int:
        return len(self.id2label) if self.id2label else 2

    @property
    def label2id(self) -> dict[str, int] | None:
        return {label: index for index, label in self.id2label.items()} if self.id2label else None

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "BertConfig":
        """One of the sizes Google released: tiny, mini, small, medium, base, large."""
        if name not in PRESETS:
            raise BertforgeError(f"unknown preset {name!r}; use one of {', '.join(PRESETS)}")
        layers, hidden = PRESETS[name]
        sizes = dict(num_hidden_layers=layers, hidden_size=hidden,
                     num_attention_heads=hidden // 64, intermediate_size=4 * hidden)
        sizes.update(overrides)
        return cls(**sizes)

    # -- files ------------------------------------------------------------------

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "BertConfig":
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        values = dict(values)
        if "num_labels" in values and not values.get("id2label"):
            values["id2label"] = {i: f"LABEL_{i}" for i in range(int(values["num_labels"]))}
        values.pop("num_labels", None)
        kwargs = {key: value for key, value in values.items() if key in known}
        extra = {key: value for key, value in values.items() if key not in known and key != "label2id"}
        if extra.get("model_type", "bert") != "bert":
            raise BertforgeError(
                f"config: model_type {extra['model_type']!r} is not a BERT model; pass a BERT checkpoint"
            )
        return cls(**kwargs, extra=extra)

    @classmethod
    def from_json_file(cls, path: str | Path) -> "BertConfig":
        """Read Hugging Face's `config.json` or Google's `bert_config.json`."""
        path = Path(path)
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BertforgeError(f"{path}: no such file; pass a model directory with config.json") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise BertforgeError(f"{path}: not valid JSON ({error}); pass a BERT config.json") from None
        if not isinstance(values, dict):
            raise BertforgeError(f"{path}: expected a JSON object of BERT settings")
        try:
            return cls.from_dict(values)
        except TypeError as error:
            raise BertforgeError(f"{path}: {error}") from None
        except BertforgeError as error:
            raise BertforgeError(f"{path}: {error}") from None

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "BertConfig":
        directory = Path(directory)
        for name in ("config.json", "bert_config.json"):
            if (directory / name).is_file():
                return cls.from_json_file(directory / name)
        raise BertforgeError(f"{directory}: no config.json or bert_config.json; pass a BERT model directory")

    def to_dict(self) -> dict[str, Any]:
        values = {key: value for key, value in dataclasses.asdict(self).items() if key != "extra"}
        values = {**self.extra, **values, "model_type": "bert"}
        if self.id2label is None:
            del values["id2label"]
        else:
            values["id2label"] = {str(key): value for key, value in self.id2label.items()}
            values["label2id"] = self.label2id
        if self.problem_type is None:
            del values["problem_type"]
        return dict(sorted(values.items()))

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / "config.json"
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path


def check_vocabulary(tokenizer_size: int, config: BertConfig, where: str) -> None:
    """Fail clearly when a tokenizer has more ids than the embedding table holds:
    its extra ids would index past the table's end.

    >>> check_vocabulary(100, BertConfig(vocab_size=100), "model")  # fits: nothing to say
    >>> check_vocabulary(120, BertConfig(vocab_size=100), "model")
    Traceback (most recent call last):
    ...
    bertforge.errors.BertforgeError: model: the vocabulary has 120 tokens but the model's embeddings hold 100; the vocab does not belong to this model
    """
    if tokenizer_size > config.vocab_size:
        raise BertforgeError(
            f"{where}: the vocabulary has {tokenizer_size} tokens but the model's embeddings hold "
            f"{config.vocab_size}; the vocab does not belong to this model"
        )


def check_max_length(max_length) -> None:
    """One line unless ``max_length`` is a whole number of at least 3 ([CLS], one token, [SEP]).

    >>> check_max_length(128)  # fine: nothing to say
    >>> check_max_length(2.5)
    Traceback (most recent call last):
    ...
    bertforge.errors.BertforgeError: max_length=2.5 is not understood; pass a whole number of at least 3 ([CLS], one token, [SEP])
    """
    # numbers.Integral takes numpy's integers too, without importing numpy here.
    if isinstance(max_length, bool) or not isinstance(max_length, numbers.Integral) or max_length < 3:
        raise BertforgeError(f"max_length={max_length!r} is not understood; pass a whole number of at "
                             "least 3 ([CLS], one token, [SEP])")
