"""The network: parity with transformers on real weights, and its fast paths."""

import csv

import pytest
import torch
import torch.nn.functional as F

from bertforge import BertConfig, BertForPreTraining, BertForSequenceClassification, BertModel, load_pretrained
from bertforge.errors import BertforgeError


def tiny_config(**overrides):
    values = dict(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=64, max_position_embeddings=40)
    values.update(overrides)
    return BertConfig(**values)


@pytest.fixture(scope="module")
def trec_batch(minilm_dir, data_dir):
    from transformers import BertTokenizerFast

    with open(data_dir / "trec" / "test.csv", newline="", encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)][:48]
    tokenizer = BertTokenizerFast.from_pretrained(str(minilm_dir))
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    lengths = batch["attention_mask"].sum(1)
    assert lengths.min() < lengths.max(), "the batch must mix lengths so padding is exercised"
    return batch


@pytest.fixture(scope="module")
def reference_model(minilm_dir):
    from transformers import BertModel as ReferenceBert

    return ReferenceBert.from_pretrained(str(minilm_dir), attn_implementation="sdpa").eval()


def test_matches_transformers_on_real_weights(minilm_dir, trec_batch, reference_model):
    ours = load_pretrained(minilm_dir)
    with torch.no_grad():
        expected = reference_model(**trec_batch)
        # int32 inputs, as numpy or TF pipelines produce them.
        got = ours(trec_batch["input_ids"].int(), trec_batch["attention_mask"].int(),
                   trec_batch["token_type_ids"].int())
    real = trec_batch["attention_mask"].bool()
    assert (got.sequence_output[real] - expected.last_hidden_state[real]).abs().max() <= 1e-5
    assert (got.pooled_output - expected.pooler_output).abs().max() <= 1e-5
    assert torch.all(got.sequence_output[~real] == 0), "padded positions are zero, not leftovers"


def test_matches_transformers_without_the_shared_data(minilm_dir, reference_model):
    from transformers import BertTokenizerFast

    texts = ["Who wrote The Cask of Amontillado ?", "How far is it from Denver to Aspen ?",
             "What is a fortnight ?", "Name the largest ocean on Earth and the smallest continent ."]
    batch = BertTokenizerFast.from_pretrained(str(minilm_dir))(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = reference_model(**batch)
        got = load_pretrained(minilm_dir)(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    real = batch["attention_mask"].bool()
    assert (got.sequence_output[real] - expected.last_hidden_state[real]).abs().max() <= 1e-5
    assert (got.pooled_output - expected.pooler_output).abs().max() <= 1e-5


def test_padding_does_not_change_a_texts_output():
    torch.manual_seed(0)
    model = BertModel(tiny_config()).eval()
    ids = torch.tensor([[2, 11, 12, 13, 3, 0, 0, 0], [2, 21, 22, 23, 24, 25, 26, 3]])
    mask = (ids != 0).long()
    with torch.no_grad():
        batched = model(ids, mask)
        alone = model(ids[:1, :5])
    assert torch.allclose(batched.sequence_output[0, :5], alone.sequence_output[0], atol=1e-6)
    assert torch.allclose(batched.pooled_output[0], alone.pooled_output[0], atol=1e-6)


def test_hf_argument_names_are_accepted():
    model = BertModel(tiny_config()).eval()
    ids = torch.tensor([[2, 5, 6, 3, 0]])
    with torch.no_grad():
        a = model(ids, (ids != 0), torch.zeros_like(ids))
        b = model(input_ids=ids, attention_mask=(ids != 0), token_type_ids=torch.zeros_like(ids))
    assert torch.equal(a.sequence_output, b.sequence_output)


def test_sequence_longer_than_positions_is_one_clear_error():
    model = BertModel(tiny_config(max_position_embeddings=8))
    with pytest.raises(BertforgeError, match="above the model's 8 positions"):
        model(torch.ones(1, 9, dtype=torch.long))


def test_token_id_outside_vocabulary_is_one_clear_error():
    model = BertModel(tiny_config())
    with pytest.raises(BertforgeError, match="token id 500 is outside the model's range 0..119"):
        model(torch.tensor([[2, 500, 3]]))
    with pytest.raises(BertforgeError, match="token id -1 is outside"):
        model(torch.tensor([[2, -1, 3]]))
    with pytest.raises(BertforgeError, match="segment id 2 is outside the model's range 0..1"):
        model(torch.tensor([[2, 5, 3]]), segment_ids=torch.tensor([[0, 0, 2]]))


def test_float_ids_are_rejected():
    with pytest.raises(BertforgeError, match="integers"):
        BertModel(tiny_config())(torch.tensor([[2.0, 3.0]]))


def test_invalid_configs_fail_clearly():
    with pytest.raises(BertforgeError, match="not divisible"):
        tiny_config(hidden_size=30)
    with pytest.raises(BertforgeError, match="num_hidden_layers must be a positive integer"):
        tiny_config(num_hidden_layers=0)


def test_sparse_masked_lm_equals_dense_logits_at_the_masked_positions():
    torch.manual_seed(0)
    model = BertForPreTraining(tiny_config()).eval()
    ids = torch.tensor([[2, 10, 11, 12, 3, 0], [2, 20, 21, 3, 22, 3]])
    mask = (ids != 0).long()
    labels = torch.full_like(ids, -100)
    labels[0, 2], labels[1, 4] = 15, 40
    with torch.no_grad():
        dense = model(ids, mask)
        sparse = model(ids, mask, masked_lm_labels=labels, next_sentence_label=torch.tensor([0, 1]))
    assert sparse.prediction_logits.shape == (2, 120)
    assert torch.allclose(sparse.prediction_logits[0], dense.prediction_logits[0, 2], atol=1e-6)
    assert torch.allclose(sparse.prediction_logits[1], dense.prediction_logits[1, 4], atol=1e-6)
    expected_mlm = F.cross_entropy(dense.prediction_logits.reshape(-1, 120), labels.reshape(-1), ignore_index=-100)
    expected_nsp = F.cross_entropy(dense.seq_relationship_logits, torch.tensor([0, 1]))
    assert torch.allclose(sparse.loss, expected_mlm + expected_nsp, atol=1e-6)


def test_decoder_is_tied_to_word_embeddings():
    model = BertForPreTraining(tiny_config())
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert torch.all(model.bert.embeddings.word_embeddings.weight[0] == 0), "the [PAD] row starts at zero"


def test_a_tiny_model_learns_a_mapping():
    torch.manual_seed(0)
    config = tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, id2label={0: "a", 1: "b"})
    model = BertForSequenceClassification(config)
    ids = torch.tensor([[2, 10, 3], [2, 11, 3], [2, 12, 3], [2, 13, 3]])
    labels = torch.tensor([0, 1, 0, 1])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(60):
        loss = model(ids, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert model(ids).logits.argmax(-1).tolist() == labels.tolist()


@pytest.mark.parametrize("problem, labels, shape", [
    ("regression", torch.tensor([0.5, 2.0]), (2, 1)),
    ("multi_label_classification", torch.tensor([[1, 0, 1], [0, 1, 0]]), (2, 3)),
    ("single_label_classification", torch.tensor([2, 0]), (2, 3)),
])
def test_classifier_losses_follow_problem_type(problem, labels, shape):
    config = tiny_config(problem_type=problem, id2label={0: "x", 1: "y", 2: "z"})
    model = BertForSequenceClassification(config)
    out = model(torch.tensor([[2, 5, 3], [2, 6, 3]]), labels=labels)
    assert out.logits.shape == shape
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)


def test_dropout_is_active_only_in_training():
    torch.manual_seed(0)
    model = BertModel(tiny_config(hidden_dropout_prob=0.3))
    ids = torch.tensor([[2, 5, 6, 7, 3]])
    model.train()
    assert not torch.equal(model(ids).sequence_output, model(ids).sequence_output)
    model.eval()
    assert torch.equal(model(ids).sequence_output, model(ids).sequence_output)


def test_compiled_training_with_dropout_compiles_once_and_still_drops():
    """Under torch.compile dropout takes torch's masks: the CPU's own mask draw would
    break the graph and compile again at every step (its seed becomes a guard)."""
    import torch._dynamo

    torch.manual_seed(0)
    model = BertForPreTraining(tiny_config(hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.2)).train()
    compiled = torch.compile(model, backend="eager", dynamic=False)  # dynamo alone: guards are its business
    ids = torch.randint(5, 120, (3, 12))
    mask = (torch.arange(12)[None, :] < torch.tensor([12, 7, 4])[:, None]).long()
    labels = torch.full_like(ids, -100)
    labels[0, 3], labels[1, 5], labels[2, 2] = 8, 9, 10

    def loss():
        out = compiled(ids * mask, mask, masked_lm_labels=labels, next_sentence_label=torch.tensor([0, 1, 0]))
        out.loss.backward()
        return float(out.loss.detach())

    torch._dynamo.reset()
    try:
        first = loss()
        with torch._dynamo.config.patch(error_on_recompile=True):
            later = [loss() for _ in range(3)]
        model.eval()  # without dropout the compiled model computes what the eager one does
        with torch.no_grad():
            eager, traced = model(ids * mask, mask), compiled(ids * mask, mask)
    finally:
        torch._dynamo.reset()
    assert len({first, *later}) == 4  # fresh masks every step
    assert torch.allclose(eager.prediction_logits, traced.prediction_logits, atol=1e-5)


def test_pooled_only_fast_path_matches_the_full_pass(minilm_dir, trec_batch):
    model = load_pretrained(minilm_dir)
    inputs = (trec_batch["input_ids"], trec_batch["attention_mask"], trec_batch["token_type_ids"])
    with torch.no_grad():
        full = model(*inputs)
        fast = model(*inputs, pooled_only=True)
    assert fast.sequence_output is None
    assert (fast.pooled_output - full.pooled_output).abs().max() <= 1e-5


@pytest.mark.parametrize("head", [BertModel, BertForPreTraining])
def test_direct_word_gradient_equals_the_standard_one(head):
    torch.manual_seed(0)
    model = head(tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    embeddings = (model if head is BertModel else model.bert).embeddings
    table = embeddings.word_embeddings
    ids = torch.tensor([[2, 5, 5, 0, 7], [2, 9, 3, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])  # a [PAD] id inside a real row too
    gradients = []
    for direct in (True, False):
        embeddings.direct_word_grad = direct
        model.zero_grad(set_to_none=True)
        for _ in range(2):  # two micro-batches accumulate
            out = model(ids, mask)
            values = out.sequence_output if head is BertModel else out.prediction_logits
            values.pow(2).sum().backward()
        gradients.append(table.weight.grad.clone())
    assert torch.allclose(gradients[0], gradients[1], atol=1e-5)
    assert gradients[0][5].abs().sum() > 0
    if head is BertModel:  # without the tied decoder, the [PAD] row gets no gradient
        assert torch.all(gradients[0][0] == 0)


def test_preparing_one_model_for_data_parallel_leaves_the_others_alone():
    """The direct word gradient is switched off per model, not for the whole process."""
    from bertforge.training.distributed import wrap

    prepared, other = BertForPreTraining(tiny_config()), BertModel(tiny_config())
    assert prepared.prepare_for_data_parallel() is prepared
    assert prepared.bert.embeddings.direct_word_grad is False
    assert other.embeddings.direct_word_grad is True
    assert BertModel(tiny_config()).embeddings.direct_word_grad is True  # new models start direct

    class Job(torch.nn.Module):  # a job's own module around a BERT, as fine-tuning wraps one
        def __init__(self):
            super().__init__()
            self.model = BertModel(tiny_config())

    job = Job()
    with pytest.raises((RuntimeError, ValueError)):  # no process group here: DDP itself refuses
        wrap(job, torch.device("cpu"))
    assert job.model.embeddings.direct_word_grad is False, "wrap prepares every BERT inside the module"
    assert other.embeddings.direct_word_grad is True
