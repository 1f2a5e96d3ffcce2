"""TensorFlow checkpoints: real weights written in each TensorFlow layout come back equal.

The MiniLM weights are written here, with TensorFlow, under the exact variable names and
array layouts of Google's release, a TF Hub TF1 module and a TF Model Garden TF2
SavedModel. A small forward pass in TensorFlow, written the way each layout's own code
computes (Google's modeling.py; the Model Garden's einsum attention), checks that the
files are what those programs would read, before the converter sees them.
"""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from bertforge import BertForPreTraining, BertModel, Tokenizer, load_pretrained
from bertforge.cli.app import main
from bertforge.model.config import BertConfig
from bertforge.errors import BertforgeError
from bertforge.io import tensorflow as convert_module
from bertforge.io.tensorflow import convert
from bertforge.text import tensorflow_vocab
from bertforge.text.tensorflow_vocab import tensorflow_layout

IDS = np.array([[101, 2054, 2003, 1037, 3899, 1029, 102, 1045, 2079, 102],
                [101, 7592, 2088, 102, 2129, 102, 0, 0, 0, 0]], dtype=np.int64)
MASK = (IDS != 0).astype(np.int64)
SEGMENTS = np.array([[0, 0, 0, 0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 1, 1, 0, 0, 0, 0]], dtype=np.int64)
REAL = torch.from_numpy(MASK).bool()
INSTALL = "install the tensorflow extra: pip install -e '.[tensorflow]'"


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow", reason=INSTALL)


@pytest.fixture(scope="module")
def original(minilm_dir):
    """MiniLM with MLM and next-sentence heads (seeded: the release has none), in eval mode."""
    torch.manual_seed(0)
    return BertForPreTraining.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def weights(original):
    return {name: tensor.detach().numpy().copy() for name, tensor in original.state_dict().items()}


def run_torch(model):
    with torch.no_grad():
        return model(*(torch.from_numpy(a) for a in (IDS, MASK, SEGMENTS)))


def encoder_of(model):
    return model.bert if hasattr(model, "bert") else model


def assert_same_encoder(model, original, tolerance=1e-5):
    got, expected = run_torch(encoder_of(model)), run_torch(encoder_of(original))
    assert (got.sequence_output[REAL] - expected.sequence_output[REAL]).abs().max() <= tolerance
    assert (got.pooled_output - expected.pooled_output).abs().max() <= tolerance


# -- the layouts, written as their own programs write them -----------------------------------


def google_variables(w, layers):
    """Google's names: dense kernels (in, out); the NSP matrix (out, in), used with transpose_b."""
    v = {
        "bert/embeddings/word_embeddings": w["bert.embeddings.word_embeddings.weight"],
        "bert/embeddings/position_embeddings": w["bert.embeddings.position_embeddings.weight"],
        "bert/embeddings/token_type_embeddings": w["bert.embeddings.token_type_embeddings.weight"],
        "bert/embeddings/LayerNorm/gamma": w["bert.embeddings.LayerNorm.weight"],
        "bert/embeddings/LayerNorm/beta": w["bert.embeddings.LayerNorm.bias"],
        "bert/pooler/dense/kernel": w["bert.pooler.dense.weight"].T,
        "bert/pooler/dense/bias": w["bert.pooler.dense.bias"],
    }
    for i in range(layers):
        tf_layer, layer = f"bert/encoder/layer_{i}", f"bert.encoder.layer.{i}"
        for part in ("query", "key", "value"):
            v[f"{tf_layer}/attention/self/{part}/kernel"] = w[f"{layer}.attention.self.{part}.weight"].T
            v[f"{tf_layer}/attention/self/{part}/bias"] = w[f"{layer}.attention.self.{part}.bias"]
        for tf_part, part in (("attention/output/dense", "attention.output.dense"),
                              ("intermediate/dense", "intermediate.dense"), ("output/dense", "output.dense")):
            v[f"{tf_layer}/{tf_part}/kernel"] = w[f"{layer}.{part}.weight"].T
            v[f"{tf_layer}/{tf_part}/bias"] = w[f"{layer}.{part}.bias"]
        for tf_part, part in (("attention/output/LayerNorm", "attention.output.LayerNorm"),
                              ("output/LayerNorm", "output.LayerNorm")):
            v[f"{tf_layer}/{tf_part}/gamma"] = w[f"{layer}.{part}.weight"]
            v[f"{tf_layer}/{tf_part}/beta"] = w[f"{layer}.{part}.bias"]
    if "cls.predictions.bias" in w:
        v["cls/predictions/transform/dense/kernel"] = w["cls.predictions.transform.dense.weight"].T
        v["cls/predictions/transform/dense/bias"] = w["cls.predictions.transform.dense.bias"]
        v["cls/predictions/transform/LayerNorm/gamma"] = w["cls.predictions.transform.LayerNorm.weight"]
        v["cls/predictions/transform/LayerNorm/beta"] = w["cls.predictions.transform.LayerNorm.bias"]
        v["cls/predictions/output_bias"] = w["cls.predictions.bias"]
        v["cls/seq_relationship/output_weights"] = w["cls.seq_relationship.weight"]
        v["cls/seq_relationship/output_bias"] = w["cls.seq_relationship.bias"]
    return v


def model_garden_variables(w, layers, heads):
    """The Model Garden's names: attention kernels keep heads as an axis."""
    hidden = w["bert.embeddings.word_embeddings.weight"].shape[1]
    size = hidden // heads
    v = {
        "word_embeddings/embeddings": w["bert.embeddings.word_embeddings.weight"],
        "position_embedding/embeddings": w["bert.embeddings.position_embeddings.weight"],
        "type_embeddings/embeddings": w["bert.embeddings.token_type_embeddings.weight"],
        "embeddings/layer_norm/gamma": w["bert.embeddings.LayerNorm.weight"],
        "embeddings/layer_norm/beta": w["bert.embeddings.LayerNorm.bias"],
        "pooler_transform/kernel": w["bert.pooler.dense.weight"].T,
        "pooler_transform/bias": w["bert.pooler.dense.bias"],
    }
    for i in range(layers):
        tf_layer, layer = f"transformer/layer_{i}", f"bert.encoder.layer.{i}"
        for part in ("query", "key", "value"):
            v[f"{tf_layer}/self_attention/{part}/kernel"] = \
                w[f"{layer}.attention.self.{part}.weight"].T.reshape(hidden, heads, size)
            v[f"{tf_layer}/self_attention/{part}/bias"] = w[f"{layer}.attention.self.{part}.bias"].reshape(heads, size)
        v[f"{tf_layer}/self_attention/attention_output/kernel"] = \
            w[f"{layer}.attention.output.dense.weight"].T.reshape(heads, size, hidden)
        v[f"{tf_layer}/self_attention/attention_output/bias"] = w[f"{layer}.attention.output.dense.bias"]
        v[f"{tf_layer}/self_attention_layer_norm/gamma"] = w[f"{layer}.attention.output.LayerNorm.weight"]
        v[f"{tf_layer}/self_attention_layer_norm/beta"] = w[f"{layer}.attention.output.LayerNorm.bias"]
        v[f"{tf_layer}/intermediate/kernel"] = w[f"{layer}.intermediate.dense.weight"].T
        v[f"{tf_layer}/intermediate/bias"] = w[f"{layer}.intermediate.dense.bias"]
        v[f"{tf_layer}/output/kernel"] = w[f"{layer}.output.dense.weight"].T
        v[f"{tf_layer}/output/bias"] = w[f"{layer}.output.dense.bias"]
        v[f"{tf_layer}/output_layer_norm/gamma"] = w[f"{layer}.output.LayerNorm.weight"]
        v[f"{tf_layer}/output_layer_norm/beta"] = w[f"{layer}.output.LayerNorm.bias"]
    return v


def _layer_norm(tf, x, gamma, beta):
    mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
    return (x - mean) * tf.math.rsqrt(variance + 1e-12) * gamma + beta


def google_forward(tf, v, ids, mask, segments, layers, heads):
    """BERT as Google's modeling.py computes it, on Google-named variables (eager or graph)."""
    batch, length = tf.shape(ids)[0], tf.shape(ids)[1]
    x = (tf.gather(v["bert/embeddings/word_embeddings"], ids) + v["bert/embeddings/position_embeddings"][:length]
         + tf.gather(v["bert/embeddings/token_type_embeddings"], segments))
    x = _layer_norm(tf, x, v["bert/embeddings/LayerNorm/gamma"], v["bert/embeddings/LayerNorm/beta"])
    adder = (1.0 - tf.cast(mask, tf.float32))[:, None, None, :] * -10000.0

    def dense(t, name):
        return tf.matmul(t, v[f"{name}/kernel"]) + v[f"{name}/bias"]

    size = v["bert/embeddings/word_embeddings"].shape[1] // heads

    def split(t):
        return tf.transpose(tf.reshape(t, [batch, length, heads, size]), [0, 2, 1, 3])

    for i in range(layers):
        p = f"bert/encoder/layer_{i}"
        q, k, val = (split(dense(x, f"{p}/attention/self/{part}")) for part in ("query", "key", "value"))
        scores = tf.matmul(q, k, transpose_b=True) / float(np.sqrt(size)) + adder
        context = tf.reshape(tf.transpose(tf.matmul(tf.nn.softmax(scores), val), [0, 2, 1, 3]), tf.shape(x))
        x = _layer_norm(tf, dense(context, f"{p}/attention/output/dense") + x,
                        v[f"{p}/attention/output/LayerNorm/gamma"], v[f"{p}/attention/output/LayerNorm/beta"])
        inner = tf.nn.gelu(dense(x, f"{p}/intermediate/dense"), approximate=False)
        x = _layer_norm(tf, dense(inner, f"{p}/output/dense") + x,
                        v[f"{p}/output/LayerNorm/gamma"], v[f"{p}/output/LayerNorm/beta"])
    pooled = tf.tanh(dense(x[:, 0], "bert/pooler/dense"))
    return x, pooled


def model_garden_forward(tf, v, ids, mask, segments, layers):
    """BERT as the Model Garden's TransformerEncoderBlock computes it (einsum attention)."""
    length = tf.shape(ids)[1]
    x = (tf.gather(v["word_embeddings/embeddings"], ids) + v["position_embedding/embeddings"][:length]
         + tf.gather(v["type_embeddings/embeddings"], segments))
    x = _layer_norm(tf, x, v["embeddings/layer_norm/gamma"], v["embeddings/layer_norm/beta"])
    adder = (1.0 - tf.cast(mask, tf.float32))[:, None, None, :] * -10000.0
    for i in range(layers):
        p = f"transformer/layer_{i}"
        q, k, val = (tf.einsum("abc,cde->abde", x, v[f"{p}/self_attention/{part}/kernel"])
                     + v[f"{p}/self_attention/{part}/bias"] for part in ("query", "key", "value"))
        scores = tf.einsum("aecd,abcd->acbe", k, q) / float(np.sqrt(q.shape[-1])) + adder
        context = tf.einsum("acbe,aecd->abcd", tf.nn.softmax(scores), val)
        attention = (tf.einsum("abcd,cde->abe", context, v[f"{p}/self_attention/attention_output/kernel"])
                     + v[f"{p}/self_attention/attention_output/bias"])
        x = _layer_norm(tf, attention + x, v[f"{p}/self_attention_layer_norm/gamma"],
                        v[f"{p}/self_attention_layer_norm/beta"])
        inner = tf.nn.gelu(tf.matmul(x, v[f"{p}/intermediate/kernel"]) + v[f"{p}/intermediate/bias"],
                           approximate=False)
        x = _layer_norm(tf, tf.matmul(inner, v[f"{p}/output/kernel"]) + v[f"{p}/output/bias"] + x,
                        v[f"{p}/output_layer_norm/gamma"], v[f"{p}/output_layer_norm/beta"])
    pooled = tf.tanh(tf.matmul(x[:, 0], v["pooler_transform/kernel"]) + v["pooler_transform/bias"])
    return x, pooled


def assert_tensorflow_agrees(sequence, pooled, original):
    """The layout as written computes what the PyTorch model computes."""
    expected = run_torch(encoder_of(original))
    assert np.abs(np.asarray(sequence)[MASK.astype(bool)] - expected.sequence_output[REAL].numpy()).max() <= 1e-4
    assert np.abs(np.asarray(pooled) - expected.pooled_output.numpy()).max() <= 1e-4


GOOGLE_CONFIG_FIELDS = ("attention_probs_dropout_prob", "hidden_act", "hidden_dropout_prob", "hidden_size",
                        "initializer_range", "intermediate_size", "max_position_embeddings",
                        "num_attention_heads", "num_hidden_layers", "type_vocab_size", "vocab_size")


def write_google(tf, folder, variables, config: BertConfig, vocab_file):
    """bert_config.json, vocab.txt and bert_model.ckpt.{index,data-00000-of-00001}."""
    folder.mkdir(parents=True)
    values = config.to_dict()
    (folder / "bert_config.json").write_text(json.dumps({key: values[key] for key in GOOGLE_CONFIG_FIELDS}))
    shutil.copy(vocab_file, folder / "vocab.txt")
    names = sorted(variables) + ["global_step"]
    tensors = [tf.constant(variables[name]) for name in sorted(variables)] + [tf.constant(np.int64(1000))]
    tf.raw_ops.SaveV2(prefix=str(folder / "bert_model.ckpt"), tensor_names=names,
                      shape_and_slices=[""] * len(names), tensors=tensors)
    return folder


def write_tf1_hub(tf, folder, variables, vocab_file, do_lower_case, layers, heads, compute=True):
    """A TF1 Hub module as hub.Module reads it: a SavedModel with the ``tokens`` and
    ``tokenization_info`` signatures, the vocabulary as an asset, and ``tfhub_module.pb``."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        tf_vars = {name: v1.get_variable(name, shape=array.shape, dtype=tf.float32,
                                         initializer=v1.zeros_initializer())
                   for name, array in variables.items()}
        feeds = {name: v1.placeholder(tf.float32, array.shape) for name, array in variables.items()}
        assign = [tf_vars[name].assign(feeds[name]) for name in variables]
        inputs = {name: v1.placeholder(tf.int32, [None, None], name=name)
                  for name in ("input_ids", "input_mask", "segment_ids")}
        sequence, pooled = google_forward(tf, {n: t.value() for n, t in tf_vars.items()}, inputs["input_ids"],
                                          inputs["input_mask"], inputs["segment_ids"], layers, heads)
        vocab_constant = tf.constant(str(vocab_file), name="vocab_file")
        v1.add_to_collection(v1.GraphKeys.ASSET_FILEPATHS, vocab_constant)
        lower_constant = tf.constant(do_lower_case, name="do_lower_case")
        info = v1.saved_model.utils.build_tensor_info
        tokens = v1.saved_model.signature_def_utils.build_signature_def(
            inputs={name: info(t) for name, t in inputs.items()},
            outputs={"sequence_output": info(sequence), "pooled_output": info(pooled)})
        tokenization = v1.saved_model.signature_def_utils.build_signature_def(
            outputs={"vocab_file": info(vocab_constant), "do_lower_case": info(lower_constant)})
        with v1.Session(graph=graph) as session:
            session.run(assign, {feeds[name]: array for name, array in variables.items()})
            computed = session.run([sequence, pooled], {inputs["input_ids"]: IDS, inputs["input_mask"]: MASK,
                                                        inputs["segment_ids"]: SEGMENTS}) if compute else None
            builder = v1.saved_model.Builder(str(folder))
            builder.add_meta_graph_and_variables(
                session, [], signature_def_map={"default": tokens, "tokens": tokens,
                                                "tokenization_info": tokenization},
                assets_collection=v1.get_collection(v1.GraphKeys.ASSET_FILEPATHS))
            builder.save()
    (folder / "tfhub_module.pb").write_bytes(b"\x08\x03")  # ModuleDef {format: FORMAT_V3}
    return computed


def write_tf2_saved_model(tf, folder, variables, vocab_file, do_lower_case, layers, compute=True):
    """A TF2 SavedModel as the Model Garden exports a BertEncoder for TF Hub: named
    variables, the ``vocab_file`` asset and the ``do_lower_case`` variable on the root."""
    root = tf.Module()
    root.tf_variables = [tf.Variable(array, name=name) for name, array in variables.items()]
    root.vocab_file = tf.saved_model.Asset(str(vocab_file))
    root.do_lower_case = tf.Variable(do_lower_case, trainable=False)
    computed = model_garden_forward(tf, {v.name.removesuffix(":0"): v for v in root.tf_variables},
                                    IDS, MASK, SEGMENTS, layers) if compute else None
    tf.saved_model.save(root, str(folder))
    return computed


# -- parity on real weights -------------------------------------------------------------------


def test_a_google_checkpoint_converts_with_the_same_outputs_and_heads(tf, minilm_dir, original, weights, tmp_path,
                                                                        capsys, monkeypatch):
    config = original.config
    variables = google_variables(weights, config.num_hidden_layers)
    assert_tensorflow_agrees(*google_forward(tf, variables, IDS, MASK, SEGMENTS, config.num_hidden_layers,
                                             config.num_attention_heads), original)
    source = write_google(tf, tmp_path / "uncased_L-6_H-384_A-12", variables, config, minilm_dir / "vocab.txt")
    assert tensorflow_layout(source) == "google"

    assert main(["convert", str(source), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "BertForPreTraining" in printed and "every weight of the model was found" in printed
    converted = BertForPreTraining.from_pretrained(tmp_path / "out")
    assert converted.load_report.missing == [] and converted.load_report.unexpected == []
    got, expected = run_torch(converted), run_torch(original)
    assert (got.prediction_logits - expected.prediction_logits).abs().max() <= 1e-5
    assert (got.seq_relationship_logits - expected.seq_relationship_logits).abs().max() <= 1e-5
    assert_same_encoder(converted, original)
    tokenizer = Tokenizer.from_pretrained(tmp_path / "out")
    assert tokenizer.do_lower_case is True and tokenizer.tokenize("Hello World") == ["hello", "world"]
    assert {"config.json", "model.safetensors", "vocab.txt", "tokenizer.json"} <= \
        {p.name for p in (tmp_path / "out").iterdir()}

    # load_pretrained converts on the fly, from the folder or from the checkpoint prefix.
    assert_same_encoder(load_pretrained(source), original)
    assert_same_encoder(load_pretrained(source / "bert_model.ckpt"), original)
    # Its tokenizer is vocab.txt beside the checkpoint: no TensorFlow, no weights read.
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "tensorflow", None)
        direct = Tokenizer.from_pretrained(source)
    assert direct.do_lower_case is True and direct.vocab == tokenizer.vocab


def test_a_cased_google_checkpoint_keeps_its_case(tf, minilm_dir, original, weights, tmp_path):
    config = original.config
    source = write_google(tf, tmp_path / "cased", google_variables(weights, config.num_hidden_layers), config,
                          minilm_dir / "vocab.txt")
    result = convert(source, tmp_path / "out", do_lower_case=False)
    assert result.do_lower_case is False
    tokenizer = Tokenizer.from_pretrained(tmp_path / "out")
    assert tokenizer.do_lower_case is False
    assert tokenizer.tokenize("Hello world") == ["[UNK]", "world"]  # an uncased vocabulary has no "Hello"
    assert json.loads((tmp_path / "out" / "tokenizer_config.json").read_text())["do_lower_case"] is False


def test_a_tf1_hub_module_converts_with_its_declared_vocab_and_case(tf, minilm_dir, original, weights, tmp_path,
                                                                     monkeypatch):
    do_lower_case = False  # what the vocabulary alone would not suggest: the declaration must win
    config = original.config
    vocab = tmp_path / "build" / "vocab.txt"
    vocab.parent.mkdir()
    shutil.copy(minilm_dir / "vocab.txt", vocab)
    # Hub modules carry no config; Google's module names give the number of heads.
    module = tmp_path / "bert_uncased_L-6_H-384_A-12"
    variables = google_variables({k: v for k, v in weights.items() if not k.startswith("cls.")},
                                 config.num_hidden_layers)
    computed = write_tf1_hub(tf, module, variables, vocab, do_lower_case, config.num_hidden_layers,
                             config.num_attention_heads)
    assert_tensorflow_agrees(*computed, original)
    shutil.rmtree(vocab.parent)  # the module must read its own copy in assets/
    assert tensorflow_layout(module) == "tf1-hub"

    result = convert(module, tmp_path / "out")
    assert result.model_class == "BertModel" and result.config.num_attention_heads == 12
    assert result.report.missing == [] and result.unused == []
    assert_same_encoder(BertModel.from_pretrained(tmp_path / "out"), original)
    tokenizer = Tokenizer.from_pretrained(tmp_path / "out")
    assert tokenizer.do_lower_case is do_lower_case
    assert tokenizer.vocab == Tokenizer.from_pretrained(minilm_dir).vocab
    assert_same_encoder(load_pretrained(module), original)
    # Opened directly, the module gives the tokenizer it declares, from its graph alone.
    monkeypatch.setattr(convert_module, "_standard_weights", weights_must_not_be_read)
    monkeypatch.setattr(tensorflow_vocab.TensorFlowCheckpoint, "variables", weights_must_not_be_read)
    direct = Tokenizer.from_pretrained(module)
    assert direct.do_lower_case is do_lower_case and direct.vocab == tokenizer.vocab


def test_a_tf2_saved_model_converts_with_its_declared_vocab_and_case(tf, minilm_dir, original, weights, tmp_path,
                                                                      monkeypatch):
    do_lower_case = False  # what the vocabulary alone would not suggest: the declaration must win
    config = original.config
    vocab = tmp_path / "build" / "vocab.txt"
    vocab.parent.mkdir()
    shutil.copy(minilm_dir / "vocab.txt", vocab)
    variables = model_garden_variables(weights, config.num_hidden_layers, config.num_attention_heads)
    computed = write_tf2_saved_model(tf, tmp_path / "encoder", variables, vocab, do_lower_case,
                                     config.num_hidden_layers)
    assert_tensorflow_agrees(*computed, original)
    shutil.rmtree(vocab.parent)
    assert tensorflow_layout(tmp_path / "encoder") == "tf2-saved-model"

    result = convert(tmp_path / "encoder", tmp_path / "out")
    # The heads come from the kernels' shapes: nothing to pass, nothing guessed.
    assert (result.config.num_attention_heads, result.config.num_hidden_layers) == (12, 6)
    assert result.report.missing == [] and result.unused == []
    assert_same_encoder(BertModel.from_pretrained(tmp_path / "out"), original)
    assert Tokenizer.from_pretrained(tmp_path / "out").do_lower_case is do_lower_case
    assert_same_encoder(load_pretrained(tmp_path / "encoder"), original)
    monkeypatch.setattr(convert_module, "_standard_weights", weights_must_not_be_read)
    monkeypatch.setattr(tensorflow_vocab.TensorFlowCheckpoint, "variables", weights_must_not_be_read)
    direct = Tokenizer.from_pretrained(tmp_path / "encoder")
    assert direct.do_lower_case is do_lower_case and direct.vocab == Tokenizer.from_pretrained(minilm_dir).vocab


def weights_must_not_be_read(*args, **kwargs):
    raise AssertionError("the tokenizer of a TensorFlow folder read its weights")


def test_a_saved_model_without_a_pooler_says_which_weights_were_not_found(tf, minilm_dir, original, weights,
                                                                            tmp_path):
    config = original.config
    variables = model_garden_variables(weights, config.num_hidden_layers, config.num_attention_heads)
    del variables["pooler_transform/kernel"], variables["pooler_transform/bias"]
    variables["classifier/logits/kernel"] = np.zeros((384, 3), np.float32)  # a task head bertforge has no place for
    write_tf2_saved_model(tf, tmp_path / "encoder", variables, minilm_dir / "vocab.txt", True,
                          config.num_hidden_layers, compute=False)
    result = convert(tmp_path / "encoder", tmp_path / "out")
    assert result.report.missing == ["pooler.dense.bias", "pooler.dense.weight"]
    assert result.unused == ["classifier/logits/kernel"]
    assert "newly initialised: pooler.dense.bias, pooler.dense.weight" in result.summary()
    assert "not used from the checkpoint: classifier/logits/kernel" in result.summary()
    converted = BertModel.from_pretrained(tmp_path / "out")
    got, expected = run_torch(converted), run_torch(original.bert)
    assert (got.sequence_output[REAL] - expected.sequence_output[REAL]).abs().max() <= 1e-5
    on_the_fly = load_pretrained(tmp_path / "encoder")
    assert on_the_fly.load_report.missing == ["pooler.dense.bias", "pooler.dense.weight"]
    assert on_the_fly.load_report.unexpected == ["classifier/logits/kernel"]


def test_a_tf1_hub_module_without_a_head_count_takes_heads_from_the_command(tf, tmp_path, capsys, caplog):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"word{i}" for i in range(35)]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    config = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=32, max_position_embeddings=32, hidden_dropout_prob=0.0)
    torch.manual_seed(0)
    original = BertModel(config).eval()
    weights = {f"bert.{k}": v.numpy() for k, v in original.state_dict().items()}
    ids = torch.tensor([[2, 7, 9, 3, 0]])
    write_tf1_hub(tf, tmp_path / "module", google_variables(weights, 2), tmp_path / "vocab.txt", True, 2, 4,
                  compute=False)

    guessed = convert(tmp_path / "module", tmp_path / "guessed")  # 64 per head, as Google's models: 1 here
    assert guessed.config.num_attention_heads == 1 and "--heads" in caplog.text
    assert main(["convert", str(tmp_path / "module"), "--out", str(tmp_path / "out"), "--heads", "4"]) == 0
    assert "heads 4" in capsys.readouterr().out
    with torch.no_grad():
        got = BertModel.from_pretrained(tmp_path / "out")(ids, ids != 0).sequence_output
        expected = original(ids, ids != 0).sequence_output
    assert (got - expected)[0, :4].abs().max() <= 1e-5


# -- bad checkpoints: one clear line each -------------------------------------------------------


@pytest.fixture
def tiny_google(tf, tmp_path):
    """A 2-layer random BERT in Google's layout, with a 40-token vocabulary."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"word{i}" for i in range(35)]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    config = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32)
    torch.manual_seed(0)
    weights = {k: v.numpy() for k, v in BertForPreTraining(config).state_dict().items()}
    return config, google_variables(weights, 2), tmp_path / "vocab.txt"


def convert_fails(capsys, source, out):
    """Run the command line; return its single stderr line."""
    assert main(["convert", str(source), "--out", str(out)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_a_missing_variable_is_named(tf, tiny_google, tmp_path, capsys):
    config, variables, vocab = tiny_google
    del variables["bert/encoder/layer_1/attention/self/key/kernel"]
    source = write_google(tf, tmp_path / "ckpt", variables, config, vocab)
    with pytest.raises(BertforgeError, match=r"bert_model.ckpt.index: variable "
                                             r"bert/encoder/layer_1/attention/self/key/kernel is missing"):
        convert(source, tmp_path / "out")
    line = convert_fails(capsys, source, tmp_path / "out")
    assert "bert/encoder/layer_1/attention/self/key/kernel is missing" in line
    assert not (tmp_path / "out").exists()


def test_an_output_folder_holding_other_files_is_refused_and_nothing_is_left_half_written(tf, tiny_google, tmp_path,
                                                                                          capsys):
    config, variables, vocab = tiny_google
    source = write_google(tf, tmp_path / "ckpt", variables, config, vocab)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "bertforge.json").write_text("{}")  # another model's labels would mix with the converted weights
    line = convert_fails(capsys, source, taken)
    assert "taken: exists and is not an empty folder" in line and "--out" in line
    assert [p.name for p in taken.iterdir()] == ["bertforge.json"]

    (tmp_path / "empty").mkdir()
    assert main(["convert", str(source), "--out", str(tmp_path / "empty")]) == 0
    assert {"config.json", "model.safetensors", "vocab.txt"} <= {p.name for p in (tmp_path / "empty").iterdir()}
    assert not [p.name for p in tmp_path.iterdir() if ".partial-" in p.name]  # the staging folder is gone


def test_a_vocab_that_does_not_match_the_embeddings_is_refused(tf, tiny_google, tmp_path, capsys):
    config, variables, vocab = tiny_google
    source = write_google(tf, tmp_path / "ckpt", variables, config, vocab)
    (source / "vocab.txt").write_text("\n".join(vocab.read_text().splitlines()[:-1]) + "\n")
    line = convert_fails(capsys, source, tmp_path / "out")
    assert "vocab.txt: 39 tokens" in line and "has 40 rows" in line and "bert/embeddings/word_embeddings" in line


def test_a_config_that_does_not_match_the_embeddings_is_refused(tf, tiny_google, tmp_path, capsys):
    config, variables, vocab = tiny_google
    source = write_google(tf, tmp_path / "ckpt", variables, config, vocab)
    values = json.loads((source / "bert_config.json").read_text())
    (source / "bert_config.json").write_text(json.dumps({**values, "vocab_size": 41}))
    line = convert_fails(capsys, source, tmp_path / "out")
    assert "bert_config.json: vocab_size 41" in line and "40 rows" in line


def test_a_corrupt_index_is_refused(tf, tiny_google, tmp_path, capsys):
    config, variables, vocab = tiny_google
    source = write_google(tf, tmp_path / "ckpt", variables, config, vocab)
    (source / "bert_model.ckpt.index").write_bytes(b"this is not a checkpoint index" * 10)
    line = convert_fails(capsys, source, tmp_path / "out")
    assert "bert_model.ckpt.index: cannot read the TensorFlow checkpoint" in line and "fetch it again" in line
    with pytest.raises(BertforgeError, match="cannot read the TensorFlow checkpoint"):
        load_pretrained(source)


@pytest.mark.slow  # a fresh interpreter importing torch and TensorFlow: tens of seconds on a small CPU
def test_a_corrupt_index_is_one_line_from_a_fresh_process(tf, tiny_google, tmp_path):
    config, variables, vocab = tiny_google
    source = write_google(tf, tmp_path / "ckpt", variables, config, vocab)
    (source / "bert_model.ckpt.index").write_bytes(b"this is not a checkpoint index" * 10)
    # TensorFlow's own start-up messages must not reach stderr either.
    run = subprocess.run([sys.executable, "-m", "bertforge", "convert", str(source), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True)
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "bert_model.ckpt.index: cannot read the TensorFlow checkpoint" in lines[0]
    assert "fetch it again" in lines[0]


def test_without_tensorflow_the_error_names_the_extra(tmp_path, monkeypatch, capsys):
    source = tmp_path / "ckpt"
    source.mkdir()
    (source / "bert_config.json").write_text(json.dumps({"vocab_size": 40, "hidden_size": 16}))
    (source / "bert_model.ckpt.index").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # import tensorflow now raises ImportError
    line = convert_fails(capsys, source, tmp_path / "out")
    assert "needs the tensorflow extra: pip install 'bertforge[tensorflow]'" in line
    with pytest.raises(BertforgeError, match=r"tensorflow extra"):
        load_pretrained(source)


def test_a_folder_that_is_no_tensorflow_model_is_refused(tmp_path, capsys):
    line = convert_fails(capsys, tmp_path, tmp_path / "out")
    assert "not a TensorFlow BERT folder" in line
