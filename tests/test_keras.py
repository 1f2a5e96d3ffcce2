"""bertforge.keras.BertLayer: a Keras 3 model (torch backend) that fine-tunes the
top N BERT layers with model.fit and survives model.save / load_model."""

import ast
import csv
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

# Keras picks its backend once, at first import; TensorFlow may be installed too.
os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras", reason="install the keras extra: pip install -e '.[keras]'")
if keras.backend.backend() != "torch":
    pytest.skip(f"Keras was imported with the {keras.backend.backend()!r} backend; run with KERAS_BACKEND=torch",
                allow_module_level=True)

import bertforge.keras  # noqa: E402  (registers BertLayer with Keras)
import bertforge.apps.keras  # noqa: E402
from bertforge import InputExample, Tokenizer, convert_examples_to_features, load_pretrained  # noqa: E402
from bertforge.errors import BertforgeError  # noqa: E402
from bertforge.keras import BertLayer  # noqa: E402

MAX_LENGTH = 24

# Keras' own numpy conversions warn under numpy 2; nothing here to act on.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.fixture(scope="module")
def trec(minilm_dir, data_dir):
    """32 TREC questions as (input_ids, input_mask, segment_ids) and their class ids."""
    with open(data_dir / "trec" / "train.csv", newline="", encoding="utf-8") as handle:
        rows = [row for _, row in zip(range(32), csv.DictReader(handle))]
    classes = sorted({row["label"] for row in rows})
    examples = [InputExample(row["text"], label=row["label"]) for row in rows]
    features = convert_examples_to_features(Tokenizer.from_pretrained(minilm_dir), examples,
                                            max_seq_length=MAX_LENGTH,
                                            label_map={label: i for i, label in enumerate(classes)})
    return [features.input_ids, features.input_mask, features.segment_ids], features.labels, len(classes)


def keras_inputs():
    return [keras.Input((MAX_LENGTH,), dtype="int32", name=name)
            for name in ("input_ids", "input_mask", "segment_ids")]


def changed_blocks(bert_layer, before):
    changed = set()
    for name, value in bert_layer.torch_layer.bert.state_dict().items():
        if not np.array_equal(value.cpu().numpy(), before[name]):
            parts = name.split(".")
            changed.add(f"layer {parts[2]}" if parts[0] == "encoder" else parts[0])
    return changed


def test_fit_trains_only_the_top_layers_and_the_model_survives_save_and_reload(minilm_dir, trec, tmp_path):
    features, labels, num_classes = trec
    keras.utils.set_random_seed(0)
    inputs = keras_inputs()
    bert = BertLayer(str(minilm_dir), fine_tune_layers=2, output="pooled")
    head = keras.layers.Dense(num_classes, activation="softmax")
    model = keras.Model(inputs, head(bert(inputs)))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    assert bert.trainable_layers == [4, 5]
    before = {name: value.cpu().numpy().copy() for name, value in bert.torch_layer.bert.state_dict().items()}
    head_before = head.kernel.numpy().copy()

    history = model.fit(features, labels, batch_size=8, epochs=2, shuffle=False, verbose=0)

    assert history.history["loss"][1] < history.history["loss"][0]
    assert changed_blocks(bert, before) == {"layer 4", "layer 5", "pooler"}
    assert not np.array_equal(head.kernel.numpy(), head_before)

    predictions = model.predict(features, verbose=0)
    path = tmp_path / "trec.keras"
    model.save(path)
    # The layer's config holds the architecture, not the directory it came from.
    config = json.dumps(bert.get_config())
    assert str(minilm_dir) not in config and '"num_hidden_layers": 6' in config

    reloaded = keras.saving.load_model(path)
    assert np.abs(reloaded.predict(features, verbose=0) - predictions).max() < 1e-5
    reloaded_bert = next(layer for layer in reloaded.layers if isinstance(layer, BertLayer))
    assert reloaded_bert.trainable_layers == [4, 5]
    assert len(reloaded.trainable_weights) == len(model.trainable_weights)
    assert np.abs(bertforge.keras.load_model(path).predict(features, verbose=0) - predictions).max() < 1e-5


def test_seed_keywords_give_the_sequence_output_of_the_torch_model(minilm_dir, trec):
    features, _, _ = trec
    inputs = [keras.Input((MAX_LENGTH,)) for _ in range(3)]  # float inputs, as the seed wrote them
    bert = BertLayer(n_fine_tune_layers=3, bert_path=str(minilm_dir))
    model = keras.Model(inputs, bert(inputs))
    assert bert.trainable_layers == [3, 4, 5]
    assert tuple(model.output.shape) == (None, MAX_LENGTH, 384)

    sequence = model.predict([f[:4] for f in features], verbose=0)
    with torch.no_grad():
        expected = load_pretrained(minilm_dir)(*(torch.from_numpy(f[:4]) for f in features)).sequence_output
    real = features[1][:4].astype(bool)
    assert np.abs(sequence[real] - expected.numpy()[real]).max() < 1e-4
    eager = bert([f[:4] for f in features])  # called outside a model: inference, no dropout
    assert np.abs(eager.detach().cpu().numpy()[real] - expected.numpy()[real]).max() < 1e-4


def test_trainable_false_freezes_all_and_true_restores_the_top_layers(minilm_dir):
    bert = BertLayer(str(minilm_dir), fine_tune_layers=1, output="cls")
    top_only = len(bert.trainable_weights)
    assert top_only == 16  # the tensors of one encoder block; cls output leaves the pooler frozen
    bert.trainable = False
    assert bert.trainable_weights == [] and bert.trainable_layers == []
    assert not any(p.requires_grad for p in bert.torch_layer.parameters())
    bert.trainable = True
    assert len(bert.trainable_weights) == top_only
    assert sum(p.requires_grad for p in bert.torch_layer.parameters()) == top_only

    frozen = BertLayer(str(minilm_dir), fine_tune_layers=2, trainable=False)
    assert frozen.trainable_weights == []
    ids = np.array([[101, 2054, 2003, 1037, 102, 0]] * 2)
    inputs = [ids, (ids != 0).astype(np.int64), np.zeros_like(ids)]
    in_fit = frozen(inputs, training=True).detach().cpu().numpy()
    assert np.array_equal(in_fit, frozen(inputs).detach().cpu().numpy())  # a frozen BERT has no dropout in fit


def test_bad_arguments_are_one_line_errors(minilm_dir, tmp_path):
    with pytest.raises(BertforgeError, match="both pretrained and bert_path"):
        BertLayer(str(minilm_dir), bert_path=str(minilm_dir))
    with pytest.raises(BertforgeError, match="both fine_tune_layers and n_fine_tune_layers"):
        BertLayer(str(minilm_dir), fine_tune_layers=2, n_fine_tune_layers=2)
    with pytest.raises(BertforgeError, match="output 'pooler' is not one of"):
        BertLayer(str(minilm_dir), output="pooler")
    with pytest.raises(BertforgeError, match="needs pretrained"):
        BertLayer()
    with pytest.raises(BertforgeError, match="no such model directory"):
        BertLayer(str(tmp_path / "nowhere"), fine_tune_layers=2)
    with pytest.raises(BertforgeError, match="no such file"):
        bertforge.keras.load_model(tmp_path / "missing.keras")


def test_a_missing_keras_extra_is_named_in_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)  # as if the extra were not installed
    monkeypatch.setattr(bertforge.apps.keras, "_layer_class", None)
    with pytest.raises(BertforgeError) as error:
        bertforge.keras.BertLayer
    assert str(error.value) == "bertforge.keras needs the keras extra: pip install 'bertforge[keras]'"


def module_level_imports(tree):
    """Names imported when the module runs: everything outside function bodies."""
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)
        pending.extend(ast.iter_child_nodes(node))


def test_import_bertforge_does_not_import_keras():
    package = Path(bertforge.__file__).parent
    for path in package.rglob("*.py"):
        names = set(module_level_imports(ast.parse(path.read_text(encoding="utf-8"))))
        if path.name == "keras.py":
            # the Keras module and its public alias import keras only inside functions
            assert not {name for name in names if name.startswith("keras")}, path
            continue
        assert not {name for name in names if name.split(".")[-1] == "keras" or name.startswith("keras")}, path


def test_the_readme_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the example writes questions.keras
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## BertLayer in a Keras model", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```py\n(.*?)```", section, flags=re.S)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    features = list(namespace["features"][:3])
    assert namespace["model"].predict(features, verbose=0).shape == (2, 2)
    difference = namespace["reloaded"].predict(features, verbose=0) - namespace["model"].predict(features, verbose=0)
    assert np.abs(difference).max() < 1e-5


@pytest.mark.parametrize("output", ["sequence", "pooled", "cls", "mean"])
def test_predict_takes_rows_with_an_all_zero_mask(minilm_dir, output):
    bert = BertLayer(str(minilm_dir), fine_tune_layers=2, output=output)
    inputs = keras_inputs()
    model = keras.Model(inputs, bert(inputs))
    ids = np.zeros((4, MAX_LENGTH), dtype=np.int32)
    ids[0, :5] = [101, 2054, 2003, 1037, 102]
    ids[2, :4] = [101, 7592, 2088, 102]
    features = [ids, (ids != 0).astype(np.int32), np.zeros_like(ids)]
    mixed = model.predict(features, verbose=0)
    alone = model.predict([f[[0, 2]] for f in features], batch_size=1, verbose=0)
    zeros_only = model.predict([np.zeros_like(ids)] * 3, verbose=0)  # every row empty
    torch_layer = bert.torch_layer
    empty = np.zeros(mixed.shape[1:], dtype=np.float32)
    if output == "pooled":
        with torch.no_grad():
            empty = torch_layer.bert.pooler(torch.zeros(1, bert.hidden_size))[0].numpy()
    assert mixed.shape == zeros_only.shape == (4, *empty.shape)
    assert np.abs(mixed[[0, 2]] - alone).max() < 1e-5
    assert np.abs(mixed[[1, 3]] - empty).max() < 1e-6
    assert np.abs(zeros_only - empty).max() < 1e-6
