"""The model's fast paths, each against the plain computation it replaces."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bertforge.model.attention import attend
from bertforge.model.fast.dropout import Dropout, dropout, keep_mask
from bertforge.model.fast.softmax_backward import softmax_backward
from bertforge.model.fast.word_lookup import WordLookup, look_up_words
from bertforge.model.layout import TokenLayout, TokenSelection


@pytest.mark.parametrize("shape", [(3, 5, 7), (8, 1, 4), (2, 16, 16)])
def test_softmax_backward_is_the_gradient_autograd_gives(shape):
    torch.manual_seed(0)
    scores = torch.randn(*shape, dtype=torch.float64)
    scores[..., -1] = float("-inf")  # a masked key: probability 0, as padding gets
    scores.requires_grad_(True)
    probs = torch.softmax(scores, dim=-1)
    upstream = torch.randn_like(probs)
    (expected,) = torch.autograd.grad(probs, scores, upstream)
    got = softmax_backward(upstream, probs.detach())
    assert torch.allclose(got, expected, rtol=0, atol=1e-14)
    assert torch.all(got[..., -1] == 0)


def test_cpu_dropout_is_the_lane_mask_scaled():
    torch.manual_seed(1)
    x = torch.randn(64, 33)
    state = torch.get_rng_state()
    dropped = dropout(x, 0.25, training=True)
    torch.set_rng_state(state)
    keep = keep_mask(tuple(x.shape), 0.25)
    assert torch.equal(dropped, x * torch.where(keep, torch.tensor(1 / 0.75), torch.tensor(0.0)))
    assert dropout(x, 0.25, training=False) is x and dropout(x, 0.0, training=True) is x


def test_dropout_add_is_the_residual_plus_dropout():
    torch.manual_seed(2)
    layer = Dropout(0.3).train()
    x, residual = torch.randn(40, 8), torch.randn(40, 8)
    state = torch.get_rng_state()
    fused = layer.add(x, residual)
    torch.set_rng_state(state)
    assert torch.allclose(fused, layer(x) + residual, rtol=0, atol=1e-6)
    layer.eval()
    assert torch.equal(layer.add(x, residual), x + residual)


def test_word_lookup_gradient_equals_the_embedding_gradient():
    torch.manual_seed(3)
    direct, plain = nn.Embedding(11, 4, padding_idx=0), nn.Embedding(11, 4, padding_idx=0)
    plain.load_state_dict(direct.state_dict())
    ids = torch.tensor([0, 3, 3, 7, 10, 0])
    for _ in range(2):  # two backward passes accumulate
        upstream = torch.randn(len(ids), 4)
        (WordLookup.apply(direct.weight, ids, 0) * upstream).sum().backward()
        (plain(ids) * upstream).sum().backward()
    assert torch.allclose(direct.weight.grad, plain.weight.grad, rtol=0, atol=1e-6)
    assert torch.all(direct.weight.grad[0] == 0), "the padding row gets no gradient"
    assert torch.equal(look_up_words(direct, ids, direct_grad=False), plain(ids))


@pytest.mark.parametrize("dropout_p", [0.0, 1e-9], ids=["padded sdpa", "grouped on the cpu"])
def test_attention_for_selected_queries_equals_the_rows_of_full_attention(dropout_p):
    """The one dispatch, with every token asking and with a selection asking: the
    selection's outputs are those tokens' rows of the full output."""
    torch.manual_seed(4)
    heads, hidden = 2, 8
    mask = (torch.arange(6)[None, :] < torch.tensor([6, 2, 4])[:, None]).long()
    layout = TokenLayout.from_mask(mask, *mask.shape)
    qkv = torch.randn(int(mask.sum()), 3 * hidden, dtype=torch.float64)
    full = attend(qkv, None, layout, None, heads, dropout_p)
    picked = TokenSelection.for_predictions(torch.tensor([1, 4, 7, 11]), layout.row_starts(), include_first=True)
    q, kv = qkv[:, :hidden], qkv[:, hidden:]
    selected = attend(kv, q.index_select(0, picked.flat), layout, picked, heads, dropout_p)
    assert torch.allclose(selected, full.index_select(0, picked.flat), rtol=0, atol=1e-12)
    grid = layout.pad(qkv).view(3, 6, 3, heads, -1).permute(2, 0, 3, 1, 4)
    plain = F.scaled_dot_product_attention(*grid, attn_mask=mask.bool()[:, None, None, :])
    # Equal up to the dropout scale 1 / (1 - 1e-9) on the grouped path.
    assert torch.allclose(full, layout.unpad(plain.transpose(1, 2).reshape(3, 6, hidden)), rtol=1e-8, atol=1e-12)


def _reference_varlen(q, k, v, query_starts, key_starts, longest_query, longest_key):
    """What a variable-length kernel computes, row by row: the GPU kernel's stand-in on a CPU."""
    rows = []
    for row in range(len(key_starts) - 1):
        qs, ks = slice(*query_starts[row:row + 2].tolist()), slice(*key_starts[row:row + 2].tolist())
        assert qs.stop - qs.start <= longest_query and ks.stop - ks.start <= longest_key
        out = F.scaled_dot_product_attention(q[qs].transpose(0, 1), k[ks].transpose(0, 1), v[ks].transpose(0, 1))
        rows.append(out.transpose(0, 1))
    return torch.cat(rows)


@pytest.mark.parametrize("selected", [False, True])
def test_variable_length_kernel_gets_the_rows_the_padded_grid_has(selected, monkeypatch):
    """The GPU's variable-length call, checked on a CPU against a row-by-row stand-in:
    its row starts and lengths must describe the same rows the padded grid does."""
    import bertforge.model.attention as attention

    monkeypatch.setattr(attention, "_varlen_attn", _reference_varlen)
    torch.manual_seed(5)
    heads, hidden = 2, 8
    mask = (torch.arange(7)[None, :] < torch.tensor([7, 3, 5])[:, None]).long()
    layout = TokenLayout.from_mask(mask, *mask.shape)
    qkv = torch.randn(int(mask.sum()), 3 * hidden, dtype=torch.float64)
    picked = None
    if selected:
        picked = TokenSelection.for_predictions(torch.tensor([1, 8, 9, 14]), layout.row_starts(), include_first=True)
        qkv, query_states = qkv[:, hidden:], qkv[:, :hidden].index_select(0, picked.flat)
    else:
        query_states = None
    got = attention._variable_length(qkv, query_states, layout, picked, heads)
    expected = attention._padded(qkv, query_states, layout, picked, heads, 0.0)
    assert torch.allclose(got, expected, rtol=0, atol=1e-12)
