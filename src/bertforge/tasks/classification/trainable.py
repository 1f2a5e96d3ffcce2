"""Sentence classification's head in training and in export: top-N fine-tuning, class weights, ONNX form."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bertforge.data.labeled import LabelEncoder
from bertforge.errors import BertforgeError
from bertforge.model.heads import BertForSequenceClassification, SequenceClassifierOutput, classifier_loss
from bertforge.model.layer import BertLayer
from bertforge.model.layout import TokenLayout
from bertforge.tasks.head_training import balanced_weights, layerwise_groups, padded_encoding


class TrainableClassifier(nn.Module):
    """A BertForSequenceClassification whose BERT trains only its top N layers.

    Takes either token ids or, with the frozen-layer cache, the cached output of
    the frozen layers (``frozen_tokens``, in the unpadded layout of ``input_mask``).
    """

    def __init__(self, model: BertForSequenceClassification, fine_tune_layers,
                 loss_weights: torch.Tensor | None = None):
        super().__init__()
        self.model = model
        self.encoder = BertLayer(model.bert, fine_tune_layers=fine_tune_layers, output="pooled")
        self.register_buffer("loss_weights", loss_weights, persistent=False)

    def outputs(self, input_ids=None, input_mask=None, segment_ids=None, frozen_tokens=None) -> torch.Tensor:
        """The head's logits per row."""
        if frozen_tokens is None:
            pooled = self.encoder(input_ids, input_mask, segment_ids)
        else:
            layout = TokenLayout.from_mask(input_mask, *input_mask.shape)
            pooled = self.encoder.forward_from_frozen(frozen_tokens, layout, input_mask)
        return self.model.classifier(self.model.dropout(pooled))

    def forward(self, labels=None, **inputs) -> SequenceClassifierOutput:
        logits = self.outputs(**inputs)
        return SequenceClassifierOutput(loss=None if labels is None else self.loss(logits, labels), logits=logits)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return classifier_loss(logits, labels, self.model.config.problem_type, self.loss_weights)

    def layerwise_groups(self, learning_rate: float, decay: float, weight_decay: float) -> list[dict]:
        """Learning rates that shrink by ``decay`` per layer going down from the head."""
        return layerwise_groups(self.model.classifier, self.model.bert, learning_rate, decay, weight_decay)


def balanced_loss_weights(targets: np.ndarray, encoder: LabelEncoder) -> torch.Tensor:
    """Weights that make every class count as much as the others in the loss.

    >>> encoder = LabelEncoder.fit(["a", "a", "a", "b"])
    >>> balanced_loss_weights(np.array([0, 0, 0, 1]), encoder).tolist()
    [0.6666666865348816, 2.0]
    """
    if encoder.task == "regression":
        raise BertforgeError("--class-weights does not apply to a regression task; drop it")
    if encoder.task == "multi_label":
        positives = targets.sum(axis=0)
        return torch.tensor((len(targets) - positives) / np.maximum(positives, 1), dtype=torch.float32)
    return balanced_weights(np.bincount(targets, minlength=encoder.num_labels))


class ExportableClassifier(nn.Module):
    """The classifier's forward on padded batches, with no branch that depends on the data.

    The training and inference paths drop padding tokens with index lists built
    from the mask, which fixes shapes a graph must keep open; here attention reads
    the mask instead, so one graph serves every batch size and length. The last
    layer still runs for [CLS] alone, as the PyTorch path does.

    >>> from bertforge.model.config import BertConfig
    >>> config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
    ...                     intermediate_size=32, id2label={0: "a", 1: "b"})
    >>> model = BertForSequenceClassification(config).eval()
    >>> ids = torch.tensor([[2, 7, 9, 3], [2, 5, 3, 0]])
    >>> mask, segments = (ids != 0).long(), torch.zeros_like(ids)
    >>> bool(torch.allclose(ExportableClassifier(model)(ids, mask, segments), model(ids, mask, segments).logits, atol=1e-6))
    True
    """

    def __init__(self, model: BertForSequenceClassification):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor):
        first_tokens = padded_encoding(self.model.bert, input_ids, attention_mask, token_type_ids, first_token_only=True)
        return self.model.classifier(self.model.bert.pooler(first_tokens))
