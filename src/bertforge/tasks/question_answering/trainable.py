"""Question answering's head in training and in export: top-N fine-tuning, ONNX form."""

from __future__ import annotations

import torch
from torch import nn

from bertforge.model.heads import BertForQuestionAnswering, QuestionAnsweringOutput, span_loss
from bertforge.model.layer import BertLayer
from bertforge.model.layout import TokenLayout
from bertforge.tasks.head_training import layerwise_groups, padded_encoding


class TrainableReader(nn.Module):
    """A BertForQuestionAnswering whose BERT trains only its top N layers.

    The encoder and the head run on the unpadded token list; the start and end logits
    are put back in ``(batch, length)`` form for the loss, which never lets padding be
    an answer. Takes token ids or, with the frozen-layer cache, the cached output of the
    frozen layers (``frozen_tokens``).
    """

    def __init__(self, model: BertForQuestionAnswering, fine_tune_layers):
        super().__init__()
        self.model = model
        self.encoder = BertLayer(model.bert, fine_tune_layers=fine_tune_layers, output="sequence")

    def outputs(self, input_ids=None, input_mask=None, segment_ids=None, frozen_tokens=None) -> torch.Tensor:
        """Start and end logits per token, ``(batch, length, 2)`` (zeros at the padding)."""
        if frozen_tokens is None:
            tokens, layout = self.encoder.encode_frozen(input_ids, input_mask, segment_ids)
        else:
            tokens, layout = frozen_tokens, TokenLayout.from_mask(input_mask, *input_mask.shape)
        tokens = self.model.bert.encoder(tokens, layout, self.encoder.first_trainable, None)
        return layout.pad(self.model.qa_outputs(tokens))

    def forward(self, labels=None, **inputs) -> QuestionAnsweringOutput:
        """The span loss against ``labels``, ``(batch, 2)`` first and last answer pieces."""
        logits = self.outputs(**inputs)
        start_logits, end_logits = logits.unbind(-1)
        loss = None
        if labels is not None:
            loss = span_loss(start_logits, end_logits, inputs["input_mask"].to(logits.device),
                             labels.to(logits.device))
        return QuestionAnsweringOutput(loss=loss, start_logits=start_logits, end_logits=end_logits)

    def layerwise_groups(self, learning_rate: float, decay: float, weight_decay: float) -> list[dict]:
        """Learning rates that shrink by ``decay`` per layer going down from the head."""
        return layerwise_groups(self.model.qa_outputs, self.model.bert, learning_rate, decay, weight_decay)


class ExportableReader(nn.Module):
    """The reader's forward on padded batches, with no branch that depends on the data:
    ``(ids, mask, segments) -> (batch, length, 2)`` start and end logits.

    >>> from bertforge.model.config import BertConfig
    >>> config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
    ...                     intermediate_size=32)
    >>> model = BertForQuestionAnswering(config).eval()
    >>> ids = torch.tensor([[2, 7, 3, 9, 3], [2, 5, 3, 6, 0]])
    >>> mask, segments = (ids != 0).long(), torch.tensor([[0, 0, 0, 1, 1], [0, 0, 0, 1, 0]])
    >>> out, real = model(ids, mask, segments), mask.bool()
    >>> bool(torch.allclose(ExportableReader(model)(ids, mask, segments)[..., 0][real], out.start_logits[real], atol=1e-5))
    True
    """

    def __init__(self, model: BertForQuestionAnswering):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor):
        tokens = padded_encoding(self.model.bert, input_ids, attention_mask, token_type_ids)
        return self.model.qa_outputs(tokens.reshape(*input_ids.shape, -1))
