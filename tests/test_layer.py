"""BertLayer: only the top N layers learn, the frozen rest is bit-identical."""

import pytest
import torch
from torch import nn

from bertforge import BertLayer, BertModel, load_pretrained
from bertforge.errors import BertforgeError

IDS = torch.tensor([[101, 2054, 2003, 1037, 3899, 1029, 102], [101, 7592, 2088, 102, 0, 0, 0]])
MASK = (IDS != 0).long()
SEGMENTS = torch.zeros_like(IDS)


@pytest.fixture(scope="module")
def encoder(minilm_dir):
    return load_pretrained(minilm_dir)


def fresh_layer(encoder, **kwargs):
    # Each test gets its own copy so optimizer steps do not leak between tests.
    copy = BertModel(encoder.config)
    copy.load_state_dict(encoder.state_dict())
    return BertLayer(copy, **kwargs)


def one_training_step(layer):
    torch.manual_seed(0)
    head = nn.Linear(layer.hidden_size, 3)
    trainable = [p for p in layer.parameters() if p.requires_grad] + list(head.parameters())
    optimizer = torch.optim.AdamW(trainable, lr=1e-2)
    layer.train()
    output = layer(IDS, MASK, SEGMENTS)
    pooled = output[:, 0] if output.dim() == 3 else output
    loss = nn.functional.cross_entropy(head(pooled), torch.tensor([0, 2]))
    loss.backward()
    optimizer.step()


def changed_blocks(layer, before):
    changed = set()
    for name, value in layer.bert.state_dict().items():
        if not torch.equal(value, before[name]):
            parts = name.split(".")
            changed.add(f"layer {parts[2]}" if parts[0] == "encoder" else parts[0])
    return changed


@pytest.mark.parametrize("output, expected", [
    ("pooled", {"layer 4", "layer 5", "pooler"}),
    ("mean", {"layer 4", "layer 5"}),
    ("sequence", {"layer 4", "layer 5"}),
])
def test_only_the_top_two_layers_change(encoder, output, expected):
    layer = fresh_layer(encoder, fine_tune_layers=2, output=output)
    before = {name: value.clone() for name, value in layer.bert.state_dict().items()}
    one_training_step(layer)
    assert changed_blocks(layer, before) == expected


def test_all_trains_embeddings_too(encoder):
    layer = fresh_layer(encoder, fine_tune_layers="all", output="cls")
    before = {name: value.clone() for name, value in layer.bert.state_dict().items()}
    one_training_step(layer)
    assert changed_blocks(layer, before) == {"embeddings"} | {f"layer {i}" for i in range(6)}


@pytest.mark.parametrize("kwargs", [dict(fine_tune_layers=0), dict(fine_tune_layers="all", trainable=False)])
def test_frozen_layer_has_no_trainable_parameters(encoder, kwargs):
    layer = fresh_layer(encoder, output="pooled", **kwargs)
    assert not any(p.requires_grad for p in layer.parameters())
    layer.train()
    assert not layer(IDS, MASK, SEGMENTS).requires_grad


def test_frozen_blocks_run_without_dropout_or_graph(encoder):
    layer = fresh_layer(encoder, fine_tune_layers=2).train()
    first, _ = layer.encode_frozen(IDS, MASK, SEGMENTS)
    second, _ = layer.encode_frozen(IDS, MASK, SEGMENTS)
    assert torch.equal(first, second), "dropout must be off in frozen blocks"
    assert not first.requires_grad and first.grad_fn is None
    assert all(not block.training for block in layer.bert.encoder.layer[:4])
    assert all(block.training for block in layer.bert.encoder.layer[4:])


def test_outputs_match_the_plain_model(encoder):
    layer = fresh_layer(encoder, fine_tune_layers=0, output="sequence").eval()
    with torch.no_grad():
        reference = encoder(IDS, MASK, SEGMENTS)
        sequence = layer([IDS, MASK, SEGMENTS])  # the seed's Keras-style single list
        mean = BertLayer(encoder, fine_tune_layers=0, output="mean").eval()(IDS, MASK, SEGMENTS)
        cls = BertLayer(encoder, fine_tune_layers=0, output="cls").eval()(IDS, MASK, SEGMENTS)
    assert torch.equal(sequence, reference.sequence_output)
    assert torch.equal(cls, reference.sequence_output[:, 0])
    expected_mean = reference.sequence_output[1, :4].mean(0)
    assert torch.allclose(mean[1], expected_mean, atol=1e-6)


def test_summary_counts_trainable_and_frozen(encoder):
    layer = fresh_layer(encoder, fine_tune_layers=2, output="pooled")
    lines = []
    text = layer.summary(print_fn=lines.append)
    assert lines == [text]
    rows = {line[:12].strip(): line[12:].split() for line in text.splitlines()[1:]}
    assert rows["layer 3"][0] == "0" and rows["layer 5"][1] == "0"
    trainable = sum(p.numel() for p in layer.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in layer.parameters() if not p.requires_grad)
    assert rows["total"] == [f"{trainable:,}", f"{frozen:,}"]


def test_bad_arguments_fail_clearly(encoder):
    with pytest.raises(BertforgeError, match="from 0 to 6"):
        BertLayer(encoder, fine_tune_layers=7)
    with pytest.raises(BertforgeError, match="output 'max'"):
        BertLayer(encoder, output="max")


@pytest.mark.parametrize("output", ["cls", "pooled"])
def test_first_token_fast_path_matches_the_plain_model(encoder, output):
    layer = fresh_layer(encoder, fine_tune_layers=2, output=output).eval()
    with torch.no_grad():
        reference = encoder(IDS, MASK, SEGMENTS)
        got = layer(IDS, MASK, SEGMENTS)
    expected = reference.sequence_output[:, 0] if output == "cls" else reference.pooled_output
    assert got.shape == expected.shape
    assert (got - expected).abs().max() <= 1e-5


# Rows 1 and 3 have an all-zero mask: no tokens at all.
WITH_EMPTY = torch.tensor([[101, 2054, 2003, 102], [0, 0, 0, 0], [101, 7592, 2088, 102], [0, 0, 0, 0]])
WITH_EMPTY_MASK = (WITH_EMPTY != 0).long()


def empty_row_output(encoder, output):
    """What BertModel gives a row without tokens: zeros, and the pooler of zeros."""
    if output == "pooled":
        with torch.no_grad():
            return encoder.pooler(torch.zeros(1, encoder.config.hidden_size))[0]
    zeros = torch.zeros(encoder.config.hidden_size)
    return zeros.expand(WITH_EMPTY.shape[1], -1) if output == "sequence" else zeros


@pytest.mark.parametrize("fine_tune_layers", [0, 2, "all"])
@pytest.mark.parametrize("output", ["sequence", "pooled", "cls", "mean"])
def test_empty_rows_get_the_plain_models_output_and_leave_the_others_unchanged(encoder, output, fine_tune_layers):
    layer = fresh_layer(encoder, fine_tune_layers=fine_tune_layers, output=output).eval()
    with torch.no_grad():
        mixed = layer(WITH_EMPTY, WITH_EMPTY_MASK, torch.zeros_like(WITH_EMPTY))
        alone = [layer(WITH_EMPTY[row:row + 1], WITH_EMPTY_MASK[row:row + 1]) for row in (0, 2)]
        all_empty = layer(WITH_EMPTY[[1, 3]], WITH_EMPTY_MASK[[1, 3]])
        reference = encoder(WITH_EMPTY, WITH_EMPTY_MASK)
    expected_empty = empty_row_output(encoder, output)
    assert mixed.shape[0] == 4 and all_empty.shape == (2, *mixed.shape[1:])
    for row in (1, 3):
        assert torch.allclose(mixed[row], expected_empty, atol=1e-6)
        assert torch.allclose(all_empty[row // 2], expected_empty, atol=1e-6)
    for got, single in zip(mixed[[0, 2]], alone):
        assert (got - single[0]).abs().max() <= 1e-5
    plain = {"sequence": reference.sequence_output, "pooled": reference.pooled_output,
             "cls": reference.sequence_output[:, 0]}.get(output)
    if plain is not None:  # BertModel's own outputs, empty rows included
        assert (mixed - plain).abs().max() <= 1e-5


@pytest.mark.parametrize("output", ["pooled", "cls"])
def test_a_batch_with_empty_rows_trains_with_finite_gradients(encoder, output):
    layer = fresh_layer(encoder, fine_tune_layers=2, output=output).train()
    layer(WITH_EMPTY, WITH_EMPTY_MASK).pow(2).sum().backward()
    gradients = [p.grad for p in layer.parameters() if p.requires_grad]
    assert gradients and all(g is not None and torch.isfinite(g).all() for g in gradients)
