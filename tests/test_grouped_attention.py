"""Attention with dropout on rows grouped by length (the CPU training path)."""

import pytest
import torch
import torch.nn.functional as F

import bertforge.model.fast.grouped_attention as grouped
from bertforge import BertConfig, BertForMaskedLM
from bertforge.model.fast.dropout import keep_mask
from bertforge.model.fast.grouped_attention import AttentionPlan, GroupedAttention

HEADS, SIZE = 2, 4
LENGTHS = [5, 1, 7, 3, 7, 2]


def starts(counts):
    return torch.tensor([0] + torch.tensor(counts).cumsum(0).tolist())


@pytest.fixture(params=["one group per row", "planned"])
def overhead(request, monkeypatch):
    """Plans with many groups (no overhead) and with the default cut."""
    if request.param == "one group per row":
        monkeypatch.setattr(grouped, "GROUP_OVERHEAD", 0)
    return request.param


def padded_reference(queries, keys, values, query_counts, key_counts):
    """Attention the plain way: rows padded to the longest, SDPA with a key mask."""
    rows, width, length = len(key_counts), max(query_counts), max(key_counts)

    def grid(tokens, counts, slots):
        out = tokens.new_zeros(rows, slots, HEADS * SIZE)
        for row, start in enumerate(starts(counts)[:-1].tolist()):
            out[row, :counts[row]] = tokens[start:start + counts[row]]
        return out.view(rows, slots, HEADS, SIZE).transpose(1, 2)

    mask = torch.arange(length)[None, :] < torch.tensor(key_counts)[:, None]
    out = F.scaled_dot_product_attention(grid(queries, query_counts, width), grid(keys, key_counts, length),
                                         grid(values, key_counts, length), attn_mask=mask[:, None, None, :])
    out = out.transpose(1, 2).reshape(rows, width, HEADS * SIZE)
    return torch.cat([out[row, :count] for row, count in enumerate(query_counts)])


def test_self_attention_without_dropout_equals_padded_attention(overhead):
    torch.manual_seed(0)
    qkv = torch.randn(sum(LENGTHS), 3 * HEADS * SIZE, dtype=torch.float64, requires_grad=True)
    plan = AttentionPlan.build(starts(LENGTHS))
    if overhead == "one group per row":
        assert len(plan.groups) > 3
    ours = GroupedAttention.apply(qkv, None, plan, HEADS, 0.0)
    q, k, v = qkv.split(HEADS * SIZE, dim=1)
    expected = padded_reference(q, k, v, LENGTHS, LENGTHS)
    assert torch.allclose(ours, expected, atol=1e-12)
    upstream = torch.randn_like(ours)
    (grad_ours,) = torch.autograd.grad(ours, qkv, upstream)
    (grad_expected,) = torch.autograd.grad(expected, qkv, upstream)
    assert torch.allclose(grad_ours, grad_expected, atol=1e-12)


def test_selected_queries_without_dropout_equal_padded_attention(overhead):
    torch.manual_seed(1)
    query_counts = [2, 0, 3, 1, 1, 2]  # the second row asks nothing: its keys get no gradient
    kv = torch.randn(sum(LENGTHS), 2 * HEADS * SIZE, dtype=torch.float64, requires_grad=True)
    queries = torch.randn(sum(query_counts), HEADS * SIZE, dtype=torch.float64, requires_grad=True)
    plan = AttentionPlan.build(starts(LENGTHS), starts(query_counts))
    ours = GroupedAttention.apply(kv, queries, plan, HEADS, 0.0)
    k, v = kv.split(HEADS * SIZE, dim=1)
    expected = padded_reference(queries, k, v, query_counts, LENGTHS)
    assert torch.allclose(ours, expected, atol=1e-12)
    upstream = torch.randn_like(ours)
    grads_ours = torch.autograd.grad(ours, (kv, queries), upstream)
    grads_expected = torch.autograd.grad(expected, (kv, queries), upstream)
    for mine, theirs in zip(grads_ours, grads_expected):
        assert torch.allclose(mine, theirs, atol=1e-12)
    assert grads_ours[0][LENGTHS[0]:LENGTHS[0] + LENGTHS[1]].abs().max() == 0


@pytest.mark.parametrize("selected", [False, True])
def test_gradients_with_dropout_match_finite_differences(selected, overhead):
    torch.manual_seed(2)
    plan_queries = starts([2, 1, 3, 1, 1, 2]) if selected else None
    plan = AttentionPlan.build(starts(LENGTHS), plan_queries)
    parts = 2 if selected else 3
    inputs = [torch.randn(sum(LENGTHS), parts * HEADS * SIZE, dtype=torch.float64, requires_grad=True)]
    if selected:
        inputs.append(torch.randn(10, HEADS * SIZE, dtype=torch.float64, requires_grad=True))

    def attention(*tensors):
        torch.manual_seed(3)  # the same dropout mask on every call
        return GroupedAttention.apply(tensors[0], tensors[1] if selected else None, plan, HEADS, 0.3)

    assert torch.autograd.gradcheck(attention, tuple(inputs))


def test_dropout_drops_the_rate_and_keeps_the_expectation():
    torch.manual_seed(4)
    lengths = [40, 25, 40, 9]
    qkv = torch.randn(sum(lengths), 3 * HEADS * SIZE)
    plan = AttentionPlan.build(starts(lengths))
    clean = GroupedAttention.apply(qkv, None, plan, HEADS, 0.0)
    draws = torch.stack([GroupedAttention.apply(qkv, None, plan, HEADS, 0.2) for _ in range(400)])
    assert not torch.allclose(draws[0], draws[1])
    # Averaged over masks, dropout (with its 1/(1-p) scale) leaves the output unchanged.
    assert (draws.mean(0) - clean).abs().mean() < 0.05 * clean.abs().mean()


def test_keep_mask_uses_every_random_lane():
    torch.manual_seed(5)
    mask = keep_mask((400_000,), 0.25)
    dropped_per_lane = 1 - mask.view(-1, 4).float().mean(0)
    assert torch.allclose(dropped_per_lane, torch.full((4,), 0.25), atol=0.01)


def test_plan_covers_every_token_once_and_pads_only_within_rows():
    lengths = [128, 30, 120, 5, 64, 128, 31, 2] * 4
    row_starts = starts(lengths)
    plan = AttentionPlan.build(row_starts)
    assert 1 < len(plan.groups) < len(lengths)
    tokens = torch.cat([group.query_tokens for group in plan.groups])
    assert sorted(tokens.tolist()) == list(range(sum(lengths)))
    rows_of = torch.searchsorted(row_starts[1:], torch.arange(sum(lengths)), right=True)
    for group in plan.groups:
        gathered = rows_of[group.key_gather].view(group.rows, group.key_length)
        assert (gathered == gathered[:, :1]).all(), "a padded slot must read its own row"
        real = torch.isfinite(group.key_bias[:, 0, :])
        assert real.sum() == len(group.key_slots)


def test_the_model_trains_through_grouped_attention_exactly():
    """With a dropout rate too small to drop anything, training mode on the CPU (grouped
    attention, for every token and for the masked tokens of the last layer) computes
    the same loss and gradients as evaluation mode (torch's attention)."""
    config = BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=40, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=1e-9)
    torch.manual_seed(6)
    model = BertForMaskedLM(config).double()
    ids = torch.randint(5, 120, (4, 30))
    mask = (torch.arange(30)[None, :] < torch.tensor([30, 12, 25, 3])[:, None]).long()
    labels = torch.full_like(ids, -100)
    labels[0, 3], labels[1, 5], labels[2, 20], labels[2, 7] = 8, 9, 10, 11

    def loss_and_grads(training):
        model.train(training)
        model.zero_grad()
        loss = model(ids * mask, mask, masked_lm_labels=labels).loss
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    calls = []
    original = GroupedAttention.apply
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(GroupedAttention, "apply", lambda *args: calls.append(1) or original(*args))
        train_loss, train_grads = loss_and_grads(True)
    assert len(calls) == 2  # the first layer over all tokens, the last for the masked ones
    eval_loss, eval_grads = loss_and_grads(False)
    # Equal up to the dropout scale 1 / (1 - 1e-9).
    assert torch.allclose(train_loss, eval_loss, rtol=1e-7, atol=0)
    for mine, theirs in zip(train_grads, eval_grads):
        assert torch.allclose(mine, theirs, rtol=1e-6, atol=1e-12)
