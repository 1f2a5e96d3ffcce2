"""Checkpoints: both directions with transformers, every layout, every failure."""

import json
import shutil
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from bertforge import (BertConfig, BertForPreTraining, BertForSequenceClassification, BertModel,
                       load_pretrained, save_pretrained)
from bertforge.errors import BertforgeError

IDS = torch.tensor([[101, 2054, 2003, 1037, 3899, 1029, 102, 1045, 2079, 102],
                    [101, 7592, 2088, 102, 2129, 102, 0, 0, 0, 0]])
MASK = (IDS != 0).long()
SEGMENTS = torch.tensor([[0, 0, 0, 0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 1, 1, 0, 0, 0, 0]])


def copy_model(source, target, weights=True):
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.is_file() and (weights or not path.name.endswith((".safetensors", ".bin"))):
            shutil.copy(path, target / path.name)
    return target


def assert_same_pretraining_logits(ours, theirs):
    real = MASK.bool()
    with torch.no_grad():
        got = ours(IDS, MASK, SEGMENTS)
        expected = theirs(input_ids=IDS, attention_mask=MASK, token_type_ids=SEGMENTS)
    assert (got.prediction_logits[real] - expected.prediction_logits[real]).abs().max() <= 1e-4
    assert (got.seq_relationship_logits - expected.seq_relationship_logits).abs().max() <= 1e-5


def test_a_model_saved_by_transformers_loads_with_the_same_logits(minilm_dir, tmp_path):
    import transformers

    torch.manual_seed(0)
    theirs = transformers.BertForPreTraining.from_pretrained(str(minilm_dir)).eval()
    theirs.save_pretrained(tmp_path)
    ours = BertForPreTraining.from_pretrained(tmp_path)
    assert ours.load_report.missing == [] and ours.load_report.unexpected == []
    assert_same_pretraining_logits(ours, theirs)


def test_a_model_saved_here_loads_in_transformers_with_the_same_logits(minilm_dir, tmp_path):
    import transformers

    torch.manual_seed(0)
    ours = BertForPreTraining.from_pretrained(minilm_dir)  # heads start random
    assert any(name.startswith("cls.") for name in ours.load_report.missing)
    save_pretrained(ours, tmp_path)
    theirs, info = transformers.BertForPreTraining.from_pretrained(str(tmp_path), output_loading_info=True)
    assert not info["missing_keys"]
    assert not info["unexpected_keys"]
    assert_same_pretraining_logits(ours, theirs.eval())


def test_classifier_saved_here_opens_with_auto_classes(minilm_dir, tmp_path):
    import transformers

    model = BertForSequenceClassification.from_pretrained(minilm_dir, id2label={0: "ham", 1: "spam"})
    assert model.load_report.missing == ["classifier.bias", "classifier.weight"]
    save_pretrained(model, tmp_path)
    theirs = transformers.AutoModelForSequenceClassification.from_pretrained(str(tmp_path)).eval()
    assert theirs.config.id2label == {0: "ham", 1: "spam"}
    with torch.no_grad():
        assert torch.allclose(model(IDS, MASK, SEGMENTS).logits,
                              theirs(input_ids=IDS, attention_mask=MASK, token_type_ids=SEGMENTS).logits, atol=1e-5)


def test_backbone_loads_from_a_checkpoint_with_heads_and_prefix(minilm_dir, tmp_path):
    save_pretrained(BertForPreTraining.from_pretrained(minilm_dir), tmp_path)
    encoder = BertModel.from_pretrained(tmp_path)
    assert encoder.load_report.missing == []
    assert "cls.seq_relationship.weight" in encoder.load_report.unexpected
    reference = BertModel.from_pretrained(minilm_dir)
    assert torch.equal(encoder.encoder.layer[3].output.dense.weight, reference.encoder.layer[3].output.dense.weight)


def test_legacy_bin_with_gamma_beta_names_loads(minilm_dir, tmp_path):
    copy_model(minilm_dir, tmp_path, weights=False)
    state = load_file(str(minilm_dir / "model.safetensors"))
    legacy = {key.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): value
              for key, value in state.items()}
    torch.save(legacy, tmp_path / "pytorch_model.bin")
    model = load_pretrained(tmp_path)
    assert model.load_report.missing == [] and model.load_report.unexpected == []
    assert torch.equal(model.embeddings.LayerNorm.weight, state["embeddings.LayerNorm.weight"])


def test_google_bert_config_json_is_read(tmp_path):
    (tmp_path / "bert_config.json").write_text(json.dumps({
        "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "hidden_size": 128, "initializer_range": 0.02, "intermediate_size": 512,
        "max_position_embeddings": 512, "num_attention_heads": 2, "num_hidden_layers": 2,
        "type_vocab_size": 2, "vocab_size": 30522}))
    config = BertConfig.from_pretrained(tmp_path)
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (128, 2, 2)


def test_config_round_trip_keeps_unknown_fields(minilm_dir, tmp_path):
    config = BertConfig.from_pretrained(minilm_dir)
    config.save(tmp_path)
    again = json.loads((tmp_path / "config.json").read_text())
    assert again["_name_or_path"] == "nreimers/MiniLM-L6-H384-uncased"
    assert again["model_type"] == "bert" and again["hidden_size"] == 384


# -- failures: one clear line each ---------------------------------------------------


def one_line(error):
    message = str(error.value)
    assert "\n" not in message
    return message


def test_missing_weight_file(minilm_dir, tmp_path):
    copy_model(minilm_dir, tmp_path, weights=False)
    with pytest.raises(BertforgeError) as error:
        load_pretrained(tmp_path)
    assert "no weight file" in one_line(error) and str(tmp_path) in one_line(error)


def test_missing_directory(tmp_path):
    with pytest.raises(BertforgeError, match="no such model directory"):
        load_pretrained(tmp_path / "nowhere" / "model")


def test_config_that_does_not_match_the_weights(minilm_dir, tmp_path):
    copy_model(minilm_dir, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["intermediate_size"] = 1024
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(BertforgeError) as error:
        load_pretrained(tmp_path)
    message = one_line(error)
    assert "encoder.layer.0.intermediate.dense" in message and "does not match" in message


def test_corrupt_weight_file(minilm_dir, tmp_path):
    copy_model(minilm_dir, tmp_path, weights=False)
    (tmp_path / "model.safetensors").write_bytes(b"this is not a safetensors file")
    with pytest.raises(BertforgeError) as error:
        load_pretrained(tmp_path)
    assert "cannot read the weights" in one_line(error)


def test_checkpoint_missing_encoder_weights(minilm_dir, tmp_path):
    copy_model(minilm_dir, tmp_path, weights=False)
    state = load_file(str(minilm_dir / "model.safetensors"))
    del state["encoder.layer.2.attention.self.key.weight"]
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(BertforgeError) as error:
        load_pretrained(tmp_path)
    assert "encoder.layer.2.attention.self.key.weight" in one_line(error)
    relaxed = load_pretrained(tmp_path, strict=False)
    assert relaxed.load_report.missing == ["encoder.layer.2.attention.self.key.weight"]


def test_not_a_bert_config(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "vocab_size": 10}))
    with pytest.raises(BertforgeError, match="not a BERT model"):
        BertConfig.from_pretrained(tmp_path)


def test_hub_id_without_huggingface_hub_says_to_pass_a_directory(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(BertforgeError, match="pass a local model directory"):
        load_pretrained("some-org/some-bert")


def test_hub_id_offline_says_to_pass_a_directory(monkeypatch):
    import huggingface_hub

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to the Hub")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(BertforgeError) as error:
        load_pretrained("some-org/some-bert")
    assert "couldn't connect" in one_line(error) and "pass a local model directory" in one_line(error)


def test_save_is_atomic_and_leaves_no_temporary_files(minilm_dir, tmp_path):
    save_pretrained(BertModel.from_pretrained(minilm_dir), tmp_path, metadata={"task": "embedding"})
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["bertforge.json", "config.json", "model.safetensors"]
    assert json.loads((tmp_path / "bertforge.json").read_text()) == {"task": "embedding"}


def test_a_failed_save_keeps_the_previous_weights(minilm_dir, tmp_path, monkeypatch):
    import safetensors.torch

    model = BertModel.from_pretrained(minilm_dir)
    save_pretrained(model, tmp_path)
    before = (tmp_path / "model.safetensors").read_bytes()

    def broken_save(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken_save)
    with torch.no_grad():
        model.encoder.layer[0].output.dense.weight.add_(1.0)
    with pytest.raises(OSError, match="disk full"):
        save_pretrained(model, tmp_path)
    assert (tmp_path / "model.safetensors").read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
