"""Metrics checked against values worked out by hand; reports and plots checked on disk."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from bertforge.errors import BertforgeError
from bertforge.evaluation.metrics import classification_metrics, multilabel_metrics, regression_metrics
from bertforge.evaluation.plots import new_figure, plot_confusion_matrix, plot_learning_curves, plot_sweep, save_png
from bertforge.evaluation.report import format_summary, sweep_table, write_metrics_json, write_report
from bertforge.tasks.classification.metrics import compute_metrics, primary_metric

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Three classes, six examples. By hand:
#   a: tp 2, fp 0, fn 1 -> P 1,   R 2/3, F1 4/5   (support 3)
#   b: tp 1, fp 1, fn 1 -> P 1/2, R 1/2, F1 1/2   (support 2)
#   c: tp 1, fp 1, fn 0 -> P 1/2, R 1,   F1 2/3   (support 1)
#   accuracy 4/6; macro F1 (4/5 + 1/2 + 2/3) / 3 = 59/90; weighted (3*4/5 + 2*1/2 + 2/3) / 6 = 61/90
LABELS = ["a", "b", "c"]
Y_TRUE = np.array([0, 0, 0, 1, 1, 2])
Y_PRED = np.array([0, 0, 1, 1, 2, 2])


def assert_png(path, min_bytes=5_000):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > min_bytes


def leftover_temporaries(directory):
    return [path.name for path in directory.iterdir() if path.name.endswith(".tmp")]


# --------------------------------------------------------------------------- classification

def test_classification_metrics_match_hand_computation():
    m = classification_metrics(Y_TRUE, Y_PRED, LABELS)
    assert m["num_examples"] == 6
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["micro_f1"] == pytest.approx(4 / 6)  # single-label micro F1 is accuracy
    assert m["macro_f1"] == pytest.approx(59 / 90)
    assert m["weighted_f1"] == pytest.approx(61 / 90)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert list(m["per_class"]) == LABELS
    assert m["per_class"]["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert m["per_class"]["b"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert m["per_class"]["c"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})


def test_classification_metrics_are_plain_json_types():
    m = classification_metrics(Y_TRUE, Y_PRED, LABELS)
    assert type(m["accuracy"]) is float and type(m["num_examples"]) is int
    assert type(m["per_class"]["a"]["support"]) is int
    assert all(type(count) is int for row in m["confusion_matrix"] for count in row)
    assert json.loads(json.dumps(m)) == m


def test_classes_absent_everywhere_are_reported_but_not_averaged():
    # c and d never occur: they appear with support 0, and macro F1 covers a and b only.
    #   a: P 1, R 1/2, F1 2/3;  b: P 2/3, R 1, F1 4/5  -> macro (2/3 + 4/5) / 2 = 11/15
    m = classification_metrics([0, 1, 0, 1], [0, 1, 1, 1], ["a", "b", "c", "d"])
    assert m["macro_f1"] == pytest.approx(11 / 15)
    assert m["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["confusion_matrix"] == [[1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]


def test_a_class_predicted_but_absent_from_y_true_counts_against_macro_f1():
    # a: P 1, R 1/2, F1 2/3; c was predicted once, never true: F1 0 -> macro 1/3.
    m = classification_metrics([0, 0], [0, 2], ["a", "b", "c"])
    assert m["macro_f1"] == pytest.approx(1 / 3)
    assert m["confusion_matrix"] == [[1, 0, 1], [0, 0, 0], [0, 0, 0]]
    assert m["per_class"]["c"]["precision"] == 0.0


def test_integral_float_labels_are_accepted():
    m = classification_metrics(Y_TRUE.astype(float), Y_PRED, LABELS)
    assert m["accuracy"] == pytest.approx(4 / 6)


@pytest.mark.parametrize("y_true, y_pred, labels, message", [
    ([0, 3], [0, 1], ["a", "b"], "class id 3"),
    ([0, 1, 1], [0, 1], ["a", "b"], "3 examples"),
    ([], [], ["a"], "empty"),
    ([0.5, 1], [0, 1], ["a", "b"], "integer class ids"),
    ([0, 1], [0, 1], ["a", "a"], "not unique"),
])
def test_classification_rejects_bad_input_with_a_clear_message(y_true, y_pred, labels, message):
    with pytest.raises(BertforgeError, match=message):
        classification_metrics(y_true, y_pred, labels)


# --------------------------------------------------------------------------- multi-label

def test_multilabel_metrics_match_hand_computation():
    y_true = [[1, 0, 1], [0, 1, 0], [1, 1, 0]]
    y_pred = [[1, 0, 1], [0, 1, 1], [1, 0, 0]]
    # exact rows: only the first -> 1/3; wrong cells: 2 of 9.
    # micro: tp 4, fp 1, fn 1 -> F1 4/5.  per label F1: x 1, y 2/3, z 2/3 -> macro 7/9.
    m = multilabel_metrics(y_true, y_pred, ["x", "y", "z"])
    assert m["subset_accuracy"] == pytest.approx(1 / 3)
    assert m["hamming_loss"] == pytest.approx(2 / 9)
    assert m["micro_f1"] == pytest.approx(0.8)
    assert m["macro_f1"] == pytest.approx(7 / 9)
    assert m["per_class"]["y"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert m["per_class"]["z"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})


def test_multilabel_rejects_non_binary_values():
    with pytest.raises(BertforgeError, match="only 0 and 1"):
        multilabel_metrics([[0, 2]], [[0, 1]])


# --------------------------------------------------------------------------- regression

def test_regression_metrics_match_hand_computation():
    # errors 0, 1, -1, 0: mse 1/2, mae 1/2; SS_tot 5 -> r2 1 - 2/5; r = 4 / sqrt(5 * 5).
    m = regression_metrics([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0])
    assert m["mse"] == pytest.approx(0.5)
    assert m["mae"] == pytest.approx(0.5)
    assert m["rmse"] == pytest.approx(math.sqrt(0.5))
    assert m["r2"] == pytest.approx(0.6)
    assert m["pearson"] == pytest.approx(0.8)
    assert m["spearman"] == pytest.approx(0.8)


def test_regression_correlations_agree_with_scipy():
    rng = np.random.default_rng(0)
    y_true = rng.normal(size=50)
    y_pred = y_true ** 3 + rng.normal(scale=0.1, size=50)  # monotone, far from linear
    m = regression_metrics(y_true, y_pred[:, None])  # (n, 1) is accepted
    assert m["pearson"] == pytest.approx(stats.pearsonr(y_true, y_pred)[0])
    assert m["spearman"] == pytest.approx(stats.spearmanr(y_true, y_pred)[0])
    assert m["spearman"] > m["pearson"]


def test_constant_arrays_give_none_not_nan(recwarn):
    constant_prediction = regression_metrics([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])
    assert constant_prediction["pearson"] is None and constant_prediction["spearman"] is None
    assert constant_prediction["r2"] == pytest.approx(1 - 2 / 2)  # SS_res 2, SS_tot 2
    constant_truth = regression_metrics([5.0, 5.0], [4.0, 6.0])
    assert constant_truth["r2"] is None and constant_truth["pearson"] is None
    assert constant_truth["mse"] == pytest.approx(1.0)
    single = regression_metrics([1.0], [1.5])
    assert single["pearson"] is None and single["r2"] is None
    json.dumps(constant_truth, allow_nan=False)  # valid strict JSON
    assert not [w for w in recwarn if "constant" in str(w.message).lower()]


# --------------------------------------------------------------------------- dispatch

def test_compute_metrics_takes_the_argmax_of_classification_logits():
    logits = np.full((6, 3), -1.0)
    logits[np.arange(6), Y_PRED] = 2.0
    m = compute_metrics("classification", Y_TRUE, logits, LABELS)
    assert m["task"] == "classification"
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert m["macro_f1"] == pytest.approx(59 / 90)


def test_compute_metrics_names_classes_when_labels_are_missing():
    m = compute_metrics("classification", [0, 1], [[1.0, 0.0], [0.0, 1.0]])
    assert list(m["per_class"]) == ["0", "1"]


def test_compute_metrics_thresholds_sigmoid_of_multilabel_logits():
    y_true = [[1, 0], [1, 1]]
    logits = [[2.0, -1.0], [1.0, 0.5]]  # sigmoid: 0.88, 0.27 / 0.73, 0.62
    assert compute_metrics("multi_label", y_true, logits)["subset_accuracy"] == 1.0
    stricter = compute_metrics("multi_label", y_true, logits, ["x", "y"], threshold=0.7)
    # predictions [[1, 0], [1, 0]]: second row misses y
    assert stricter["subset_accuracy"] == 0.5
    assert stricter["hamming_loss"] == 0.25


def test_compute_metrics_accepts_hugging_face_problem_types():
    m = compute_metrics("multi_label_classification", [[1, 0]], [[3.0, -3.0]])
    assert m["task"] == "multi_label" and m["micro_f1"] == 1.0


def test_compute_metrics_regression_accepts_column_predictions():
    m = compute_metrics("regression", [1.0, 2.0, 3.0], np.array([[1.0], [2.0], [4.0]]), labels=None)
    assert m["task"] == "regression"
    assert m["mse"] == pytest.approx(1 / 3)


def test_compute_metrics_refuses_diverged_outputs_and_unknown_tasks():
    with pytest.raises(BertforgeError, match="NaN"):
        compute_metrics("classification", [0], [[np.nan, 1.0]], ["a", "b"])
    with pytest.raises(BertforgeError, match="NaN"):
        compute_metrics("regression", [0.0], [np.inf])
    with pytest.raises(BertforgeError, match="unknown task"):
        compute_metrics("ranking", [0], [[1.0]])
    with pytest.raises(BertforgeError, match="2 labels for 3"):
        compute_metrics("classification", [0], [[1.0, 0.0, 0.0]], ["a", "b"])


def test_primary_metric_per_task():
    assert primary_metric("classification") == ("accuracy", True)
    assert primary_metric("multi_label") == ("micro_f1", True)
    assert primary_metric("regression") == ("mse", False)


# --------------------------------------------------------------------------- summary

def test_format_summary_per_task():
    classification = format_summary(classification_metrics(Y_TRUE, Y_PRED, LABELS), "classification")
    assert classification.splitlines()[0] == "accuracy 0.667  macro-F1 0.656  weighted-F1 0.678  (n=6)"
    assert "lowest F1: b 0.500" in classification
    multi = format_summary(multilabel_metrics([[1, 0]], [[1, 1]]), "multi_label")
    assert "subset-accuracy 0.000" in multi and "hamming-loss 0.5000" in multi
    regression = format_summary(compute_metrics("regression", [1.0, 1.0], [1.0, 2.0]))
    assert "mse 0.5" in regression and "pearson n/a" in regression and "r2 n/a" in regression
    with pytest.raises(BertforgeError, match="unknown task 'ranking'"):
        format_summary({"mse": 1.0}, "ranking")


# --------------------------------------------------------------------------- reports and plots

HISTORY = [
    {"epoch": 1, "step": 10, "train_loss": 1.2, "elapsed_s": 1.0},
    {"epoch": 1, "step": 20, "train_loss": 0.8, "val_loss": 0.9, "val_accuracy": 0.6, "elapsed_s": 2.1},
    {"epoch": 2, "step": 30, "train_loss": 0.5, "elapsed_s": 3.0, "note": "warmup done"},
    {"epoch": 2, "step": 40, "train_loss": 0.4, "val_loss": 0.6, "val_accuracy": 0.8, "elapsed_s": 4.2},
]


def test_write_report_writes_all_files(tmp_path):
    metrics = compute_metrics("classification", Y_TRUE, np.eye(3)[Y_PRED], LABELS)
    paths = write_report(tmp_path / "run", metrics, history=HISTORY, title="TREC fine-tune")

    assert set(paths) == {"metrics", "report", "confusion_matrix", "learning_curves"}
    assert {path.name for path in paths.values()} == {
        "metrics.json", "report.md", "confusion_matrix.png", "learning_curves.png"}
    assert json.loads(paths["metrics"].read_text()) == metrics
    assert paths["metrics"].read_text().startswith('{\n  "task"')  # indent 2
    assert_png(paths["confusion_matrix"])
    assert_png(paths["learning_curves"])

    report = paths["report"].read_text()
    assert report.startswith("# TREC fine-tune")
    assert "| accuracy | 0.6667 |" in report
    assert "| b | 0.5000 | 0.5000 | 0.5000 | 2 |" in report
    assert "| **a** | 2 | 1 | 0 |" in report
    assert "![Confusion matrix](confusion_matrix.png)" in report
    assert "![Learning curves](learning_curves.png)" in report
    assert leftover_temporaries(paths["report"].parent) == []


def test_write_report_for_regression_has_no_confusion_matrix(tmp_path):
    metrics = compute_metrics("regression", [1.0, 2.0, 2.0], [1.0, 1.0, 1.0])
    paths = write_report(tmp_path, metrics)
    assert set(paths) == {"metrics", "report"}
    saved = json.loads(paths["metrics"].read_text())
    assert saved["pearson"] is None
    assert "| pearson | n/a |" in paths["report"].read_text()


def test_write_report_unwraps_numpy_values_and_nan(tmp_path):
    metrics = {"accuracy": np.float32(0.5), "num_examples": np.int64(4), "val_loss": float("nan")}
    paths = write_report(tmp_path, metrics)
    assert json.loads(paths["metrics"].read_text()) == {"accuracy": 0.5, "num_examples": 4, "val_loss": None}


def test_a_failed_write_leaves_the_previous_metrics_intact(tmp_path):
    write_metrics_json(tmp_path / "metrics.json", {"accuracy": 0.9})
    with pytest.raises(BertforgeError, match="cannot write"):
        write_report(tmp_path, {"accuracy": 0.1, "model": object()})
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"accuracy": 0.9}
    assert leftover_temporaries(tmp_path) == []


def test_learning_curves_need_numeric_series(tmp_path):
    assert plot_learning_curves([{"note": "nothing to plot"}], tmp_path / "curves.png") is None
    assert not (tmp_path / "curves.png").exists()
    path = plot_learning_curves(HISTORY, tmp_path / "curves.png")
    assert_png(path)


def test_confusion_matrix_plot_scales_to_many_classes(tmp_path):
    rng = np.random.default_rng(1)
    k = 40
    y_true = rng.integers(0, k, 400)
    y_pred = np.where(rng.random(400) < 0.7, y_true, rng.integers(0, k, 400))
    matrix = classification_metrics(y_true, y_pred, [f"label {i}" for i in range(k)])["confusion_matrix"]
    assert_png(plot_confusion_matrix(matrix, [f"label {i}" for i in range(k)], tmp_path / "cm.png"), 20_000)
    with pytest.raises(BertforgeError, match="does not fit"):
        plot_confusion_matrix(matrix, ["a", "b"], tmp_path / "bad.png")


SWEEP = [
    {"fine_tune_layers": "all", "train_seconds": 240.0, "examples_per_second": 110.0, "accuracy": 0.97},
    {"fine_tune_layers": "0", "train_seconds": 30.0, "examples_per_second": 900.0, "accuracy": 0.88},
    {"fine_tune_layers": "2", "train_seconds": 75.0, "examples_per_second": 380.0, "accuracy": 0.94},
]


def test_plot_sweep_writes_a_png(tmp_path):
    path = plot_sweep(SWEEP, tmp_path / "plots" / "sweep.png")
    assert path == tmp_path / "plots" / "sweep.png"
    assert_png(path)
    with pytest.raises(BertforgeError, match="lacks macro_f1"):
        plot_sweep(SWEEP, tmp_path / "sweep.png", metric="macro_f1")


def test_sweep_table_orders_layers_and_compares_time():
    lines = sweep_table(SWEEP, "accuracy").splitlines()
    assert lines[0] == "| fine-tuned layers | accuracy | train time (s) | examples/s | time vs. fastest |"
    assert lines[2:] == [
        "| 0 | 0.8800 | 30.0 | 900.0 | 1.00x |",
        "| 2 | 0.9400 | 75.0 | 380.0 | 2.50x |",
        "| all | 0.9700 | 240.0 | 110.0 | 8.00x |",
    ]


def test_write_report_checks_labels_before_writing(tmp_path):
    metrics = classification_metrics(Y_TRUE, Y_PRED, LABELS)
    with pytest.raises(BertforgeError, match="2 labels for a 3-class"):
        write_report(tmp_path, metrics, labels=["a", "b"])
    assert list(tmp_path.iterdir()) == []


def test_new_figure_and_save_png_are_public(tmp_path):
    figure = new_figure(3.0, 2.0)
    figure.subplots().bar(["a", "b"], [1, 2])
    assert_png(save_png(figure, tmp_path / "nested" / "bars.png"), min_bytes=1_000)


@pytest.mark.parametrize("module", ["metrics", "report", "plots"])
def test_importing_evaluation_stays_cheap(module):
    # Drawing needs matplotlib, the metrics scikit-learn; importing needs neither, nor torch or the data layer.
    code = (f"import sys\nimport bertforge.evaluation.{module}\n"
            "heavy = {'torch', 'matplotlib', 'sklearn', 'bertforge.data'} & set(sys.modules)\n"
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


# Rows as the training loop logs them: a training line and an evaluation line.
LOGGED_HISTORY = [
    {"step": 5, "epoch": 0, "train_loss": 1.4, "learning_rate": 5e-5, "tokens": 1280, "tokens_per_second": 640.0,
     "elapsed_s": 2.0},
    {"step": 5, "epoch": 1, "elapsed_s": 2.0, "val_accuracy": 0.5, "val_macro_f1": 0.4, "val_micro_f1": 0.5,
     "val_weighted_f1": 0.45, "val_num_examples": 40, "val_loss": 1.2},
    {"step": 10, "epoch": 1, "train_loss": 0.9, "learning_rate": 0.0, "tokens": 2560, "tokens_per_second": 700.0,
     "elapsed_s": 3.7, "val_masked_tokens": 300, "val_correct_entities": 12, "val_has_answer_total": 20,
     "val_best_f1_threshold": -1.5, "val_best_f1": 71.0, "perplexity": 4.1, "val_train_seconds": 3.0},
]


def test_learning_curves_plot_metrics_and_never_counters():
    from bertforge.evaluation.plots import learning_curve_series

    x_name, series = learning_curve_series(LOGGED_HISTORY)
    assert x_name == "step"
    assert sorted(series) == ["perplexity", "train_loss", "val_accuracy", "val_best_f1", "val_loss",
                              "val_macro_f1", "val_micro_f1", "val_weighted_f1"]
    assert series["train_loss"] == ([5.0, 10.0], [1.4, 0.9])


def test_a_history_of_counters_alone_draws_no_learning_curves(tmp_path):
    counters = [{key: value for key, value in row.items() if key in ("step", "epoch", "tokens", "learning_rate",
                                                                      "elapsed_s", "val_num_examples")}
                for row in LOGGED_HISTORY]
    assert plot_learning_curves(counters, tmp_path / "curves.png") is None
    assert not (tmp_path / "curves.png").exists()
