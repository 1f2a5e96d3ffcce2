"""Ask a masked-LM what belongs at each ``[MASK]``: a quick look at what pretraining taught it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bertforge.io.load import load_pretrained
from bertforge.errors import BertforgeError
from bertforge.model.heads import BertForMaskedLM
from bertforge.text.tokenizer import Tokenizer


# Where the masked-LM head's own weights live (its decoder shares the word embeddings).
MASKED_LM_HEAD = "cls.predictions."


@dataclass(frozen=True)
class Prediction:
    token: str
    probability: float


class FillMask:
    """Top predictions for every ``[MASK]`` in a text.

    >>> import tempfile
    >>> from bertforge.model.config import BertConfig
    >>> folder = tempfile.mkdtemp()
    >>> tok = Tokenizer.train(["the cat sat on the mat"] * 20, vocab_size=40)
    >>> config = BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=1,
    ...                     num_attention_heads=2, intermediate_size=32)
    >>> _ = BertForMaskedLM(config).save_pretrained(folder, tokenizer=tok)
    >>> filler = FillMask.load(folder)
    >>> [len(options) for options in filler("the [MASK] sat on the [MASK]", top_k=3)]
    [3, 3]
    """

    def __init__(self, model: BertForMaskedLM, tokenizer: Tokenizer):
        if tokenizer.mask_id is None:
            raise BertforgeError("the tokenizer has no [MASK] token; use the vocabulary the model was pretrained with")
        self.model = model.eval()
        self.tokenizer = tokenizer

    @classmethod
    def load(cls, directory: str, device: str = "cpu") -> "FillMask":
        """The masked-LM in ``directory``; a model saved without one (an encoder, a classifier) is
        refused, as its new, untrained head would print random words."""
        model = load_pretrained(directory, BertForMaskedLM)
        untrained = [name for name in model.load_report.missing if name.startswith(MASKED_LM_HEAD)]
        if untrained:
            raise BertforgeError(f"{directory}: the model has no masked-LM head (no {MASKED_LM_HEAD}* weights: it was "
                                 "saved as an encoder or a classifier); fill-mask needs a pretrained masked-LM, such "
                                 "as one from bertforge pretrain or a BERT checkpoint with its cls.predictions head")
        return cls(model.to(device), Tokenizer.from_pretrained(directory))

    @torch.inference_mode()
    def __call__(self, text: str, top_k: int = 5) -> list[list[Prediction]]:
        if top_k < 1:
            raise BertforgeError(f"top_k must be at least 1, got {top_k}")
        encoded = self.tokenizer.encode(text, max_length=self.model.config.max_position_embeddings)
        ids = torch.tensor([encoded.input_ids], device=next(self.model.parameters()).device)
        where = (ids[0] == self.tokenizer.mask_id).nonzero(as_tuple=True)[0]
        if not len(where):
            raise BertforgeError(f"no {self.tokenizer.special_tokens['mask']} in the text; put one where "
                                 "a word should be predicted")
        logits = self.model(ids).prediction_logits[0, where].float()
        probabilities, tokens = logits.softmax(-1).topk(min(top_k, logits.shape[-1]), dim=-1)
        return [[Prediction(self.tokenizer.convert_ids_to_tokens(int(t)), float(p)) for t, p in zip(row_t, row_p)]
                for row_t, row_p in zip(tokens, probabilities)]
