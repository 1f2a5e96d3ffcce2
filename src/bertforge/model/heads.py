"""The task heads on top of the encoder, each model with its own named output.

- :class:`BertForPreTraining`: masked LM + next sentence (or sentence order), as in
  the original pretraining;
- :class:`BertForMaskedLM`: masked LM alone (no pooler, as RoBERTa pretrains);
- :class:`BertForSequenceClassification`: a linear layer on the pooled output, for
  single-label, multi-label and regression tasks (:func:`classifier_loss`);
- :class:`BertForTokenClassification`: a linear layer on every token (a tag per piece);
- :class:`BertForQuestionAnswering`: start and end logits on every token (:func:`span_loss`).

Module names follow the standard layout (``cls.predictions.transform...``,
``cls.seq_relationship``, ``classifier``), so checkpoints load unchanged. With
masked-LM labels the last layer and the decoder, the largest matrix in
pretraining, run only at the labelled tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from bertforge.constants import IGNORE_INDEX
from bertforge.model.bert import BertModel, PreTrainedBert, activation, as_ids
from bertforge.model.config import BertConfig
from bertforge.model.fast.dropout import Dropout
from bertforge.model.layout import TokenLayout, TokenSelection, Unpadding


class BertPredictionHeadTransform(nn.Module):
    """dense, activation, LayerNorm: what the masked-LM decoder reads."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = activation(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.act(self.dense(x)))


class BertLMPredictionHead(nn.Module):
    """Masked-LM head; its decoder shares its matrix with the word embeddings."""

    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.decoder.weight = word_embeddings.weight
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.transform(x), self.decoder.weight, self.bias)


class BertPreTrainingHeads(nn.Module):
    """The masked-LM head and the two-way sentence-pair classifier."""

    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.predictions = BertLMPredictionHead(config, word_embeddings)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)


class BertOnlyMLMHead(nn.Module):
    """The masked-LM head alone."""

    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.predictions = BertLMPredictionHead(config, word_embeddings)


@dataclass
class PreTrainingOutput:
    """What :class:`BertForPreTraining` returns; ``loss`` is the masked-LM plus the pair loss.

    ``prediction_logits`` covers every position when no masked-LM labels are given;
    with labels it covers only the labelled positions (``masked_positions``, flat in
    ``batch * length``), and ``sequence_output`` is not computed. ``loss_terms``: each
    part of ``loss`` as ``(mean, count)``, the number of items it is the mean of, so a
    data-parallel loop can weigh every masked token of the global batch alike. With a
    selection filled to a fixed size (``TokenSelection``'s ``capacity``) the logits
    include the fillers' rows, and the count, a 0-d tensor then, is the real labelled
    tokens alone.
    """

    loss: torch.Tensor | None = None
    prediction_logits: torch.Tensor | None = None
    seq_relationship_logits: torch.Tensor | None = None  # next sentence / sentence order
    mlm_loss: torch.Tensor | None = None
    pair_loss: torch.Tensor | None = None
    masked_positions: torch.Tensor | None = None
    sequence_output: torch.Tensor | None = None
    pooled_output: torch.Tensor | None = None
    loss_terms: tuple[tuple[torch.Tensor, int | torch.Tensor], ...] | None = None


@dataclass
class MaskedLMOutput:
    """What :class:`BertForMaskedLM` returns; ``loss`` is the masked-LM loss (logits as
    in :class:`PreTrainingOutput`)."""

    loss: torch.Tensor | None = None
    prediction_logits: torch.Tensor | None = None
    mlm_loss: torch.Tensor | None = None
    masked_positions: torch.Tensor | None = None
    sequence_output: torch.Tensor | None = None
    loss_terms: tuple[tuple[torch.Tensor, int | torch.Tensor], ...] | None = None


@dataclass
class SequenceClassifierOutput:
    """What :class:`BertForSequenceClassification` returns."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None  # (batch, labels); (batch, 1) for regression
    pooled_output: torch.Tensor | None = None


@dataclass
class TokenClassifierOutput:
    """What :class:`BertForTokenClassification` returns."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None  # (batch, length, labels)


@dataclass
class QuestionAnsweringOutput:
    """What :class:`BertForQuestionAnswering` returns."""

    loss: torch.Tensor | None = None
    start_logits: torch.Tensor | None = None  # (batch, length)
    end_logits: torch.Tensor | None = None  # (batch, length)


class _MaskedLMPass(NamedTuple):
    """The shared masked-LM forward's result, before each model adds its own part."""

    prediction_logits: torch.Tensor
    mlm_loss: torch.Tensor | None
    mlm_count: int | torch.Tensor  # the labelled tokens mlm_loss is the mean over (fillers not counted)
    masked_positions: torch.Tensor | None
    first_tokens: torch.Tensor | None  # each row's [CLS] state, for a pair head's pooler
    sequence_output: torch.Tensor | None


def _prediction_tokens(layout: TokenLayout, labels: torch.Tensor, positions: torch.Tensor | None,
                       include_first: bool) -> TokenSelection:
    """The tokens the heads read: the labelled ones (and [CLS] for a pair head).

    ``positions`` (token-list indices of the labelled tokens) come from the data
    pipeline; without them they are found here, which on a GPU waits for it."""
    if positions is None:
        positions = torch.nonzero(labels != IGNORE_INDEX, as_tuple=True)[0]
    return TokenSelection.for_predictions(positions, layout.row_starts(labels.device), include_first)


def _masked_lm_loss(head: BertLMPredictionHead, hidden: torch.Tensor, targets: torch.Tensor):
    logits = head(hidden)
    return logits, F.cross_entropy(logits.float(), targets)


class _PretrainingBase(PreTrainedBert):
    """The shared forward of the masked-LM models.

    With labels, the last layer and the MLM decoder run only at the labelled
    tokens (and [CLS] when a pair head reads it): exact, since nothing else
    reaches the loss, and it saves most of the last layer and of the decoder.
    Without labels, every position gets logits.
    """

    pair_head = False

    def _masked_lm(self, input_ids, input_mask, segment_ids, masked_lm_labels, masked_lm_positions,
                   prediction_tokens, unpadding) -> _MaskedLMPass:
        ids, segments, layout = self.bert.layout(input_ids, input_mask, segment_ids, unpadding)
        tokens = self.bert.embeddings(ids, segments, layout)
        if masked_lm_labels is None:
            tokens = self.bert.encoder(tokens, layout)
            first = tokens.index_select(0, layout.first_tokens().to(tokens.device)) if self.pair_head else None
            sequence_output = layout.pad(tokens)
            return _MaskedLMPass(self.cls.predictions(sequence_output), None, 0, None, first, sequence_output)
        labels = layout.unpad(as_ids(masked_lm_labels).to(tokens.device))
        selection = prediction_tokens
        if selection is not None and self.pair_head and selection.firsts is None:
            # Made for a model without a pair head: add [CLS], which the pooler reads.
            masked_lm_positions, selection = selection.flat.index_select(0, selection.labelled), None
        if selection is None:
            selection = _prediction_tokens(layout, labels, masked_lm_positions, self.pair_head)
        selected = self.bert.encoder(tokens, layout, last_layer_tokens=selection)
        positions = selection.flat.index_select(0, selection.labelled)
        # A filled selection's fillers read a token without a label: the loss ignores them.
        logits, loss = _masked_lm_loss(self.cls.predictions, selected.index_select(0, selection.labelled),
                                       labels.index_select(0, positions))
        first = selected.index_select(0, selection.firsts) if self.pair_head else None
        count = positions.numel() if selection.labelled_count is None else selection.labelled_count
        return _MaskedLMPass(logits, loss, count, layout.padded_positions(positions), first, None)


class BertForPreTraining(_PretrainingBase):
    """BERT with the masked-LM and next-sentence heads of the original pretraining.

    >>> config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
    ...                     num_attention_heads=4, intermediate_size=64)
    >>> model = BertForPreTraining(config)
    >>> ids = torch.tensor([[2, 7, 4, 3, 8, 3]])
    >>> labels = torch.tensor([[-100, -100, 9, -100, -100, -100]])
    >>> out = model(ids, masked_lm_labels=labels, next_sentence_label=torch.tensor([1]))
    >>> tuple(out.prediction_logits.shape), out.loss.shape
    ((1, 100), torch.Size([]))
    """

    pair_head = True

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config)
        self.cls = BertPreTrainingHeads(config, self.bert.embeddings.word_embeddings)
        self.init_weights()
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight

    def forward(self, input_ids, input_mask=None, segment_ids=None, masked_lm_labels=None,
                next_sentence_label=None, masked_lm_positions=None,
                prediction_tokens: TokenSelection | None = None, *, attention_mask=None, token_type_ids=None,
                labels=None, unpadding: Unpadding | None = None) -> PreTrainingOutput:
        """``masked_lm_positions`` / ``prediction_tokens`` / ``unpadding``: where the
        labelled and the real tokens sit, worked out ahead by the data pipeline (see
        ``PretrainingBatches``). ``attention_mask``, ``token_type_ids`` and ``labels``
        (the masked-LM labels): the names transformers users type."""
        masked = self._masked_lm(
            input_ids, _either(input_mask, attention_mask), _either(segment_ids, token_type_ids),
            _either(masked_lm_labels, labels), masked_lm_positions, prediction_tokens, unpadding)
        pooled = self.bert.pooler(masked.first_tokens)
        pair_logits = self.cls.seq_relationship(pooled)
        pair_loss = None
        if next_sentence_label is not None:
            pair_loss = F.cross_entropy(pair_logits.float(), as_ids(next_sentence_label).reshape(-1))
        terms = tuple(term for term in ((masked.mlm_loss, masked.mlm_count), (pair_loss, len(pair_logits)))
                      if term[0] is not None)
        return PreTrainingOutput(
            loss=sum(mean for mean, _ in terms) if terms else None, prediction_logits=masked.prediction_logits,
            seq_relationship_logits=pair_logits, mlm_loss=masked.mlm_loss, pair_loss=pair_loss,
            masked_positions=masked.masked_positions, sequence_output=masked.sequence_output,
            pooled_output=pooled, loss_terms=terms or None,
        )


class BertForMaskedLM(_PretrainingBase):
    """BERT with the masked-LM head only (no pooler, as in RoBERTa-style pretraining).

    >>> config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1,
    ...                     num_attention_heads=4, intermediate_size=64)
    >>> logits = BertForMaskedLM(config)(torch.tensor([[2, 4, 3]])).prediction_logits
    >>> tuple(logits.shape)
    (1, 3, 100)
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config, self.bert.embeddings.word_embeddings)
        self.init_weights()
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight

    def forward(self, input_ids, input_mask=None, segment_ids=None, masked_lm_labels=None,
                masked_lm_positions=None, prediction_tokens: TokenSelection | None = None, *,
                attention_mask=None, token_type_ids=None, labels=None, unpadding: Unpadding | None = None,
                next_sentence_label=None) -> MaskedLMOutput:
        """As :meth:`BertForPreTraining.forward`; ``next_sentence_label`` is ignored, so
        batches made for a pair objective fit here too."""
        masked = self._masked_lm(
            input_ids, _either(input_mask, attention_mask), _either(segment_ids, token_type_ids),
            _either(masked_lm_labels, labels), masked_lm_positions, prediction_tokens, unpadding)
        terms = None if masked.mlm_loss is None else ((masked.mlm_loss, masked.mlm_count),)
        return MaskedLMOutput(loss=masked.mlm_loss, prediction_logits=masked.prediction_logits,
                              mlm_loss=masked.mlm_loss, masked_positions=masked.masked_positions,
                              sequence_output=masked.sequence_output, loss_terms=terms)


class BertForSequenceClassification(PreTrainedBert):
    """BERT + dropout + a linear layer on the pooled output.

    ``config.problem_type`` picks the loss: ``single_label_classification``
    (cross-entropy, the default), ``multi_label_classification`` (binary
    cross-entropy per label) or ``regression`` (mean squared error).

    >>> config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1,
    ...                     num_attention_heads=4, intermediate_size=64,
    ...                     id2label={0: "ham", 1: "spam"})
    >>> out = BertForSequenceClassification(config)(torch.tensor([[2, 4, 3]]), labels=torch.tensor([1]))
    >>> tuple(out.logits.shape), out.loss.ndim
    ((1, 2), 0)
    """

    def __init__(self, config: BertConfig, num_labels: int | None = None):
        super().__init__()
        self.config = config
        self.num_labels = num_labels or (1 if config.problem_type == "regression" else config.num_labels)
        self.bert = BertModel(config)
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, self.num_labels)
        self.init_weights()

    def forward(self, input_ids, input_mask=None, segment_ids=None, labels=None, *, attention_mask=None,
                token_type_ids=None, unpadding: Unpadding | None = None) -> SequenceClassifierOutput:
        _, pooled = self.bert(input_ids, input_mask, segment_ids, pooled_only=True, attention_mask=attention_mask,
                              token_type_ids=token_type_ids, unpadding=unpadding)
        logits = self.classifier(self.dropout(pooled))
        loss = None if labels is None else self.loss(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits, pooled_output=pooled)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return classifier_loss(logits, labels, self.config.problem_type)


class BertForTokenClassification(PreTrainedBert):
    """BERT + dropout + a linear layer on every token: one tag per word piece.

    The weight names are those of ``transformers``' ``BertForTokenClassification`` (no
    pooler), so a saved tagger opens in ``AutoModelForTokenClassification``. ``labels``
    are per token, :data:`IGNORE_INDEX` where no tag is learned (special tokens, the
    later pieces of a word, padding).

    >>> config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
    ...                     intermediate_size=64, id2label={0: "O", 1: "B-PER", 2: "I-PER"})
    >>> out = BertForTokenClassification(config)(torch.tensor([[2, 4, 5, 3]]), labels=torch.tensor([[-100, 1, 2, -100]]))
    >>> tuple(out.logits.shape), out.loss.ndim
    ((1, 4, 3), 0)
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, self.num_labels)
        self.init_weights()

    def forward(self, input_ids, input_mask=None, segment_ids=None, labels=None, *, attention_mask=None,
                token_type_ids=None) -> TokenClassifierOutput:
        sequence_output, _ = self.bert(input_ids, input_mask, segment_ids, attention_mask=attention_mask,
                                       token_type_ids=token_type_ids)
        logits = self.classifier(self.dropout(sequence_output))
        loss = None if labels is None else token_loss(logits.flatten(0, 1), labels.reshape(-1))
        return TokenClassifierOutput(loss=loss, logits=logits)


class BertForQuestionAnswering(PreTrainedBert):
    """BERT + a linear layer giving every token a start and an end logit: extractive
    question answering (the answer is the span between the best start and end).

    The weight names are those of ``transformers``' ``BertForQuestionAnswering``
    (``qa_outputs``, no pooler, no dropout before the head), so either side opens the
    other's model. ``start_positions`` / ``end_positions`` are the answer's first and last
    piece per row, 0 (``[CLS]``) when the row holds no answer.

    >>> config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
    ...                     intermediate_size=64)
    >>> out = BertForQuestionAnswering(config)(torch.tensor([[2, 4, 3, 5, 6, 3]]), start_positions=torch.tensor([3]),
    ...                                        end_positions=torch.tensor([4]))
    >>> tuple(out.start_logits.shape), out.loss.ndim
    ((1, 6), 0)
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.num_labels = 2
        self.bert = BertModel(config, add_pooling_layer=False)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)
        self.init_weights()

    def forward(self, input_ids, input_mask=None, segment_ids=None, start_positions=None, end_positions=None, *,
                attention_mask=None, token_type_ids=None) -> QuestionAnsweringOutput:
        input_mask = _either(input_mask, attention_mask)
        sequence_output, _ = self.bert(input_ids, input_mask, _either(segment_ids, token_type_ids))
        start_logits, end_logits = self.qa_outputs(sequence_output).unbind(-1)
        loss = None
        if start_positions is not None and end_positions is not None:
            mask = input_mask if input_mask is not None else torch.ones_like(input_ids)
            loss = span_loss(start_logits, end_logits, mask, torch.stack([start_positions, end_positions], -1))
        return QuestionAnsweringOutput(loss=loss, start_logits=start_logits, end_logits=end_logits)


def span_loss(start_logits: torch.Tensor, end_logits: torch.Tensor, input_mask: torch.Tensor,
              positions: torch.Tensor) -> torch.Tensor:
    """The mean of the start and end cross-entropies over each row's real tokens
    (padding can never be the answer); ``positions`` is ``(batch, 2)``.

    >>> round(span_loss(torch.zeros(1, 4), torch.zeros(1, 4), torch.tensor([[1, 1, 0, 0]]), torch.tensor([[0, 1]])).item(), 4)  # log(2)
    0.6931
    """
    padding = ~input_mask.bool()
    floor = torch.finfo(torch.float32).min
    starts = start_logits.float().masked_fill(padding, floor)
    ends = end_logits.float().masked_fill(padding, floor)
    return (F.cross_entropy(starts, positions[:, 0]) + F.cross_entropy(ends, positions[:, 1])) / 2


def token_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy over the tokens that carry a tag (``labels != IGNORE_INDEX``);
    ``weights`` per tag.

    >>> round(token_loss(torch.zeros(3, 4), torch.tensor([1, -100, 2])).item(), 4)  # log(4)
    1.3863
    """
    return F.cross_entropy(logits.float(), labels, weight=weights, ignore_index=IGNORE_INDEX)


def classifier_loss(logits: torch.Tensor, labels: torch.Tensor, problem_type: str | None,
                    weights: torch.Tensor | None = None) -> torch.Tensor:
    """The loss ``problem_type`` calls for; ``weights`` are per-class (cross-entropy)
    or per-label positive weights (binary cross-entropy).

    >>> round(classifier_loss(torch.zeros(2, 3), torch.tensor([0, 2]), None).item(), 4)  # log(3)
    1.0986
    """
    if problem_type == "regression":
        return F.mse_loss(logits.float().squeeze(-1), labels.float().reshape(-1))
    if problem_type == "multi_label_classification":
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float(), pos_weight=weights)
    return F.cross_entropy(logits.float(), as_ids(labels).reshape(-1), weight=weights)


def _either(ours, theirs):
    """Our argument name wins; the transformers name fills in when ours is not given."""
    return ours if ours is not None else theirs


__all__ = [
    "BertForPreTraining", "BertForMaskedLM", "BertForSequenceClassification", "PreTrainingOutput",
    "MaskedLMOutput", "SequenceClassifierOutput", "classifier_loss", "BertForTokenClassification",
    "TokenClassifierOutput", "token_loss",
]
