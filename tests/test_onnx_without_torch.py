"""A folder written by ``bertforge export`` runs with ONNX Runtime and without torch.

predict, evaluate, serve and ``Predictor.load`` run in subprocesses where torch cannot be
imported (a ``sitecustomize`` on ``PYTHONPATH`` hides it from every import finder, as on a
machine without it), and answer what the same folder answers with torch installed.
"""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("onnxruntime", reason="install the onnx extra: pip install -e '.[onnx]'")
pytest.importorskip("onnxscript", reason="install the onnx extra: pip install -e '.[onnx]'")

from bertforge.apps.export import export_onnx  # noqa: E402
from bertforge.apps.predictor import Predictor  # noqa: E402
from bertforge.cli.app import main  # noqa: E402

TEXTS = ["Who wrote the poem ?", "Where is the river ?", "x", "How many legs does a spider have ?",
         "What is the name of the longest river in the world and how long is it , in miles ?"]
LABELED = [("Who wrote the poem ?", "a"), ("Where is the river ?", "b"), ("Who was the first king ?", "a"),
           ("Where do penguins live ?", "b")]

# Hides torch from every finder on sys.meta_path: ``import torch`` fails as where it is not
# installed, and ``importlib.util.find_spec("torch")`` is None.
WITHOUT_TORCH = '''
import sys


class _WithoutTorch:
    def __init__(self, finder):
        self._finder = finder

    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            return None
        find = getattr(self._finder, "find_spec", None)
        return find(name, path, target) if find is not None else None

    def __getattr__(self, name):
        return getattr(self._finder, name)


sys.meta_path[:] = [_WithoutTorch(finder) for finder in sys.meta_path]
'''

# Everything the commands on an exported folder import, before any model is opened.
ONNX_PATH_MODULES = ["bertforge.cli.app", "bertforge.apps.predictor", "bertforge.apps.output_folder",
                     "bertforge.serving.app", "bertforge.serving.service", "bertforge.io.model_paths"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, minilm_dir):
    """A tiny random classifier (labels a and b) exported to ONNX, fp32."""
    from test_serving_hostile import make_classifier

    root = tmp_path_factory.mktemp("without-torch")
    model = make_classifier(root / "classifier", minilm_dir)
    export_onnx(model, root / "onnx")
    return root / "onnx"


@pytest.fixture(scope="module")
def no_torch_env(tmp_path_factory):
    """The environment of a Python where torch cannot be imported."""
    folder = tmp_path_factory.mktemp("no-torch-site")
    (folder / "sitecustomize.py").write_text(WITHOUT_TORCH, encoding="utf-8")
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    hidden = subprocess.run([sys.executable, "-c", "import importlib.util, sys\n"
                             "assert importlib.util.find_spec('torch') is None\nimport torch"],
                            env=env, capture_output=True, text=True)
    assert hidden.returncode == 1 and "No module named 'torch'" in hidden.stderr, hidden.stderr
    return env


def run_python(env, *args):
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done


def test_the_onnx_path_imports_no_torch():
    code = "\n".join(["import sys"] + [f"import {module}" for module in ONNX_PATH_MODULES]
                     + ["assert 'torch' not in sys.modules, [m for m in sys.modules if m.startswith('bertforge')]"])
    subprocess.run([sys.executable, "-c", code], check=True)


def test_predict_without_torch_answers_as_with_it(exported, no_torch_env, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    run_python(no_torch_env, "-m", "bertforge", "predict", "--model", str(exported), str(texts),
               "--output", str(tmp_path / "without.jsonl"), "--quiet")
    assert main(["predict", "--model", str(exported), str(texts), "--output", str(tmp_path / "with.jsonl"),
                 "--quiet"]) == 0
    without = (tmp_path / "without.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(without) == len(TEXTS)
    assert without == (tmp_path / "with.jsonl").read_text(encoding="utf-8").splitlines()


def test_evaluate_without_torch_answers_as_with_it(exported, no_torch_env, tmp_path, capsys):
    labeled = tmp_path / "labeled.csv"
    labeled.write_text("text,label\n" + "".join(f'"{text}",{label}\n' for text, label in LABELED), encoding="utf-8")
    done = run_python(no_torch_env, "-m", "bertforge", "evaluate", "--model", str(exported), "--data", str(labeled),
                      "--out", str(tmp_path / "report"))
    assert (tmp_path / "report" / "report.md").is_file()
    assert main(["evaluate", "--model", str(exported), "--data", str(labeled)]) == 0
    expected = capsys.readouterr().out
    assert "accuracy" in expected
    assert done.stdout == expected + f"report in {tmp_path / 'report'}\n"


def test_predictor_load_without_torch_answers_as_with_it(exported, no_torch_env):
    code = ("import json, sys\nfrom bertforge import Predictor\n"
            f"rows = Predictor.load({str(exported)!r}).predict({TEXTS!r})\n"
            "print(json.dumps(rows))\n")
    done = run_python(no_torch_env, "-c", code)
    assert json.loads(done.stdout) == json.loads(json.dumps(Predictor.load(exported).predict(TEXTS)))


def test_serve_without_torch_answers_as_with_it(exported, no_torch_env, tmp_path, monkeypatch):
    httpx = pytest.importorskip("httpx", reason="install the test extra: pip install -e '.[test]'")
    pytest.importorskip("fastapi", reason="install the serve extra: pip install -e '.[serve]'")
    pytest.importorskip("uvicorn", reason="install the serve extra: pip install -e '.[serve]'")
    from serving_helpers import Server

    monkeypatch.setenv("PYTHONPATH", no_torch_env["PYTHONPATH"])
    server = Server(exported, tmp_path / "server.log")
    try:
        url = server.wait_ready()
        answer = httpx.post(url + "/predict", json={"texts": TEXTS}, timeout=120)
        assert answer.status_code == 200, answer.text
        expected = Predictor.load(exported).predict(TEXTS)
        got = answer.json()["predictions"]
        assert [row["label"] for row in got] == [row["label"] for row in expected]
        for row, reference in zip(got, expected):
            assert row["probabilities"] == pytest.approx(reference["probabilities"], abs=1e-6)
        # An exported graph has no PyTorch encoder to embed with: a clear 404, not a crash.
        assert httpx.post(url + "/embed", json={"texts": TEXTS[:1]}, timeout=120).status_code == 404
    finally:
        code = server.stop()
    assert code == 0, server.log.read_text()
