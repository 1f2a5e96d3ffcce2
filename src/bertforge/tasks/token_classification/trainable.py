"""Token classification's head in training and in export: top-N fine-tuning, tag weights, ONNX form."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bertforge.constants import IGNORE_INDEX
from bertforge.model.heads import BertForTokenClassification, TokenClassifierOutput, token_loss
from bertforge.model.layer import BertLayer
from bertforge.model.layout import TokenLayout, TokenSelection
from bertforge.tasks.head_training import balanced_weights, layerwise_groups, padded_encoding


class TrainableTagger(nn.Module):
    """A BertForTokenClassification whose BERT trains only its top N layers.

    The loss is taken on the unpadded token list the encoder works on, so the head and
    the loss never touch padding; ``outputs`` gives padded ``(batch, length, tags)``
    logits for evaluation. Takes token ids or, with the frozen-layer cache, the cached
    output of the frozen layers (``frozen_tokens``).
    """

    def __init__(self, model: BertForTokenClassification, fine_tune_layers, loss_weights: torch.Tensor | None = None):
        super().__init__()
        self.model = model
        self.encoder = BertLayer(model.bert, fine_tune_layers=fine_tune_layers, output="sequence")
        self.register_buffer("loss_weights", loss_weights, persistent=False)

    def _encode(self, input_ids=None, input_mask=None, segment_ids=None, frozen_tokens=None):
        """The frozen bottom's token list (run here, or read from the cache) and its layout."""
        if frozen_tokens is None:
            return self.encoder.encode_frozen(input_ids, input_mask, segment_ids)
        return frozen_tokens, TokenLayout.from_mask(input_mask, *input_mask.shape)

    def outputs(self, input_ids=None, input_mask=None, segment_ids=None, frozen_tokens=None) -> torch.Tensor:
        """The head's logits per token, ``(batch, length, tags)``."""
        tokens, layout = self._encode(input_ids, input_mask, segment_ids, frozen_tokens)
        tokens = self.model.bert.encoder(tokens, layout, self.encoder.first_trainable, None)
        return layout.pad(self.model.classifier(self.model.dropout(tokens)))

    def forward(self, labels=None, **inputs) -> TokenClassifierOutput:
        """The loss over the tagged pieces, with their ``logits`` alone in token order (without
        ``labels``: the logits of every real token, unpadded)."""
        tokens, layout = self._encode(**inputs)
        bert = self.model.bert
        if labels is None:
            tokens = bert.encoder(tokens, layout, self.encoder.first_trainable, None)
            return TokenClassifierOutput(logits=self.model.classifier(self.model.dropout(tokens)))
        targets = layout.unpad(labels.to(tokens.device))
        tagged = torch.nonzero(targets != IGNORE_INDEX).squeeze(1)
        if self.encoder.first_trainable < bert.config.num_hidden_layers:
            # Only the tagged pieces' outputs are read: the last block computes their queries
            # and feed-forward alone (keys and values still cover every token), which skips
            # [CLS], [SEP] and the later pieces of words, about 40% of a tweet's tokens.
            selection = TokenSelection.for_predictions(tagged, layout.row_starts(tokens.device), include_first=False)
            tokens = bert.encoder(tokens, layout, self.encoder.first_trainable, None, last_layer_tokens=selection)
        else:
            tokens = tokens.index_select(0, tagged)
        logits = self.model.classifier(self.model.dropout(tokens))
        return TokenClassifierOutput(loss=token_loss(logits, targets.index_select(0, tagged), self.loss_weights),
                                     logits=logits)

    def layerwise_groups(self, learning_rate: float, decay: float, weight_decay: float) -> list[dict]:
        """Learning rates that shrink by ``decay`` per layer going down from the head."""
        return layerwise_groups(self.model.classifier, self.model.bert, learning_rate, decay, weight_decay)


def balanced_tag_weights(labels: np.ndarray, num_tags: int) -> torch.Tensor:
    """Weights that make every tag count as much as the others in the loss, from the
    tags the training rows learn (``IGNORE_INDEX`` left out).

    >>> balanced_tag_weights(np.array([[0, 0, 0, 1, -100]]), 2).tolist()
    [0.6666666865348816, 2.0]
    """
    return balanced_weights(np.bincount(labels[labels != IGNORE_INDEX].ravel(), minlength=num_tags))


class ExportableTagger(nn.Module):
    """The tagger's forward on padded batches, with no branch that depends on the data:
    attention reads the mask, so one graph serves every batch size and length.

    >>> from bertforge.model.config import BertConfig
    >>> config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
    ...                     intermediate_size=32, id2label={0: "O", 1: "B-X"})
    >>> model = BertForTokenClassification(config).eval()
    >>> ids = torch.tensor([[2, 7, 9, 3], [2, 5, 3, 0]])
    >>> mask, segments = (ids != 0).long(), torch.zeros_like(ids)
    >>> real = mask.bool()
    >>> bool(torch.allclose(ExportableTagger(model)(ids, mask, segments)[real], model(ids, mask, segments).logits[real], atol=1e-5))
    True
    """

    def __init__(self, model: BertForTokenClassification):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor):
        tokens = padded_encoding(self.model.bert, input_ids, attention_mask, token_type_ids)
        return self.model.classifier(tokens.reshape(*input_ids.shape, -1))
