"""Export a fine-tuned model as one deployable ONNX folder, checked on the way out.

The folder holds ``model.onnx`` (encoder and head, fp32 or dynamically quantized
int8), the tokenizer files, ``config.json`` and ``bertforge.json`` (labels, task,
max length, and what the export check measured). Before the folder appears, the
exported graph runs on a sample of texts next to the PyTorch model: the largest
logit difference and the share of equal predictions are recorded, and an export
that misses ``tolerance`` (fp32) or ``min_agreement`` (int8) is not written.
``Predictor.load`` and ``bertforge predict`` / ``evaluate`` open the folder and
run it through ONNX Runtime.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bertforge.apps.predictor import Predictor
from bertforge.errors import BertforgeError
from bertforge.files import replacing_folder, write_text_atomically
from bertforge.io.onnx import INPUT_NAMES, ONNX_FILE, OUTPUT_NAME, OnnxClassifierModel, require
from bertforge.text.features import convert_examples_to_features

SAMPLE_SIZE = 500
DEFAULT_OPSET = 18
DEFAULT_TOLERANCE = 1e-4
DEFAULT_MIN_AGREEMENT = 0.98


@dataclass
class ExportCheck:
    """What the export measured: the ONNX graph against the PyTorch model on ``examples`` texts."""

    sample: str  # where the texts came from
    examples: int
    max_abs_logit_diff: float
    prediction_agreement: float
    precision: str  # "fp32" or "int8"

    def summary(self) -> str:
        return (f"{self.precision}: max abs logit difference {self.max_abs_logit_diff:.2e}, "
                f"prediction agreement {self.prediction_agreement:.2%} on {self.examples} texts ({self.sample})")


def export_onnx(model: str | os.PathLike, out: str | os.PathLike, *, int8: bool = False,
                sample: str | os.PathLike | None = None, text_column: str | None = None,
                tolerance: float = DEFAULT_TOLERANCE, min_agreement: float = DEFAULT_MIN_AGREEMENT,
                opset: int = DEFAULT_OPSET, overwrite: bool = False) -> ExportCheck:
    """Write ``out``: ``model.onnx`` + tokenizer + labels, after checking the graph against PyTorch.

    ``sample``: a file of texts (CSV, JSONL or lines) for the check; by default the
    training file the model was fine-tuned on, when it is still there, else texts
    made of random vocabulary words. fp32 fails when the largest logit difference
    exceeds ``tolerance``; int8 when the share of equal predictions is below
    ``min_agreement``. ``out`` must be new or empty, or an earlier export.

    >>> check = export_onnx("runs/trec", "runs/trec-onnx", int8=True)   # doctest: +SKIP
    >>> check.prediction_agreement                                      # doctest: +SKIP
    0.996
    """
    for module in ("onnx", "onnxscript", "onnxruntime"):
        require(module, "bertforge export")
    source = Path(model)
    out = Path(out)
    _check_destination(out, overwrite)
    predictor = Predictor.load(source, device="cpu")
    if isinstance(predictor.model, OnnxClassifierModel):
        raise BertforgeError(f"{source}: is already an exported ONNX folder; export the PyTorch model directory")
    texts, pairs, origin = _sample_texts(predictor, sample, text_column)

    with replacing_folder(out) as staging:
        graph = staging / ONNX_FILE
        _export_graph(predictor, graph, opset)
        if int8:
            _quantize(graph)
        check = _compare(predictor, OnnxClassifierModel(graph), texts, pairs, origin, "int8" if int8 else "fp32")
        if not int8 and check.max_abs_logit_diff > tolerance:
            raise BertforgeError(f"export check failed: {check.summary()}, above the tolerance {tolerance:g}; "
                                 "nothing was written (report this model: the graph does not match)")
        if int8 and check.prediction_agreement < min_agreement:
            raise BertforgeError(f"export check failed: {check.summary()}, below --min-agreement "
                                 f"{min_agreement:g}; nothing was written: export fp32, or lower --min-agreement")
        _write_companions(predictor, source, staging, check, opset)
    return check


# -- the steps ------------------------------------------------------------------------


def _check_destination(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise BertforgeError(f"{out}: exists and is not a folder; pass a new folder for --out")
    if out.is_dir() and any(out.iterdir()):
        earlier_export = (out / ONNX_FILE).is_file() and (out / "bertforge.json").is_file()
        if not earlier_export:
            raise BertforgeError(f"{out}: exists and holds other files; pass a new or empty folder for --out")
        if not overwrite:
            raise BertforgeError(f"{out}: holds an earlier export; pass --overwrite to replace it")


def _sample_texts(predictor: Predictor, sample, text_column) -> tuple[list[str], list[str] | None, str]:
    """Texts for the check: the given file, else the training file, else random words."""
    columns = predictor.columns or {}
    if sample is not None:
        path = Path(sample)
        if not path.is_file():
            raise BertforgeError(f"{sample}: not found; pass a file of texts for --sample")
    else:
        train = (predictor.metadata.get("settings") or {}).get("train")
        path = Path(train) if train and Path(train).is_file() else None
    if path is not None:
        texts, pairs = predictor.task.texts(predictor.task.read_unlabeled(str(path), {
            "text_column": text_column or columns.get("text_column"),
            "text_pair_column": columns.get("text_pair_column")}))
        if texts:
            picks = np.linspace(0, len(texts) - 1, min(SAMPLE_SIZE, len(texts))).round().astype(int)
            picks = sorted(set(picks.tolist()))
            return [texts[i] for i in picks], None if pairs is None else [pairs[i] for i in picks], path.name
    return _random_word_texts(predictor, SAMPLE_SIZE), None, "random vocabulary words"


def _random_word_texts(predictor: Predictor, count: int) -> list[str]:
    words = [token for token in predictor.tokenizer.vocab
             if token.isalpha() and not token.startswith("[") and not token.startswith("##")]
    if not words:
        raise BertforgeError("the tokenizer has no whole-word entries to build check texts from; pass --sample FILE")
    words.sort()  # a dict's order is not the same in every tokenizer file
    generator = np.random.default_rng(0)
    return [" ".join(generator.choice(words, size=int(generator.integers(3, 40)))) for _ in range(count)]


def _export_graph(predictor: Predictor, path: Path, opset: int) -> None:
    """Trace the padded forward once with open batch and length axes; one self-contained file."""
    require("onnxscript", "bertforge export")
    wrapper = predictor.task.exportable(predictor.model).eval()
    # Two rows of eight: sizes of 0 or 1 would be fixed into the graph as constants.
    example = convert_examples_to_features(
        predictor.tokenizer, ["an example text to trace the model with", "a second one"], max_seq_length=8)
    args = tuple(torch.as_tensor(array, dtype=torch.long) for array in example[:3])
    batch = torch.export.Dim("batch")
    length = torch.export.Dim("length", max=predictor.model.config.max_position_embeddings)
    axes = {name: {0: batch, 1: length} for name in INPUT_NAMES}
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # notes on operators of packages not installed (torchvision)
    with warnings.catch_warnings(), torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # the exporter's notes on its own internals
        try:
            torch.onnx.export(wrapper, args, str(path), input_names=list(INPUT_NAMES), output_names=[OUTPUT_NAME],
                              dynamic_shapes=axes, opset_version=opset, dynamo=True, external_data=False,
                              optimize=True, verbose=False)
        except Exception as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise BertforgeError(f"the ONNX exporter failed ({reason}); rerun with --debug for details") from error
        finally:
            exporter_log.setLevel(level)


def _quantize(path: Path) -> None:
    """Weights of every matrix product (per output channel) and of the word embeddings to int8;
    activations are quantized on the fly."""
    quantization = require("onnxruntime.quantization", "int8 export")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32, prepared = path.with_name("model.fp32.onnx"), path.with_name("model.prepared.onnx")
    path.rename(fp32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Shapes inferred and constants folded first: without it the quantizer passes
        # over the matrix products whose input shapes it cannot see (a quarter of them).
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        quantization.quantize_dynamic(str(prepared), str(path), weight_type=quantization.QuantType.QInt8,
                                      per_channel=True)
    fp32.unlink()
    prepared.unlink()


def _compare(predictor: Predictor, exported: OnnxClassifierModel, texts: list[str], pairs: list[str] | None,
             origin: str, precision: str) -> ExportCheck:
    expected = predictor.scores(texts, pairs)
    # The same reading of long texts and the same threshold as the model being exported.
    got = Predictor(exported, predictor.tokenizer, predictor.task, predictor.max_seq_length,
                    long_text=predictor.long_text).scores(texts, pairs)
    if got.shape != expected.shape:
        raise BertforgeError(f"export check failed: the graph gives {got.shape[1:]} outputs per text, "
                             f"the model {expected.shape[1:]}")
    agreement = predictor.task.export_agreement(expected, got)
    return ExportCheck(origin, len(texts), predictor.task.output_difference(expected, got), agreement, precision)


def _write_companions(predictor: Predictor, source: Path, staging: Path, check: ExportCheck, opset: int) -> None:
    predictor.tokenizer.save(staging)
    config = source / "config.json"
    if config.is_file():
        shutil.copyfile(config, staging / "config.json")
    metadata: dict[str, Any] = dict(predictor.metadata)
    for key, value in predictor.task.metadata().items():
        metadata.setdefault(key, value)
    metadata.setdefault("max_seq_length", predictor.max_seq_length)
    metadata["export"] = {"format": "onnx", "file": ONNX_FILE, "opset": opset, "inputs": list(INPUT_NAMES),
                          "source": source.name, "check": asdict(check)}
    write_text_atomically(staging / "bertforge.json", json.dumps(metadata, indent=2, ensure_ascii=False) + "\n")


__all__ = ["ExportCheck", "export_onnx"]
