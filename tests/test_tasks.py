"""The task seam: the registry, a model directory's task, and the settings the jobs take."""

import pytest
import torch

from bertforge import BertConfig, BertForMaskedLM, Tokenizer, save_pretrained
from bertforge.apps.finetune import FineTuneSettings
from bertforge.apps.predictor import Predictor
from bertforge.errors import BertforgeError
from bertforge.tasks import all_kinds, fine_tuned, task_class, task_for_model
from bertforge.tasks.classification.task import ClassificationTask
from bertforge.tasks.question_answering.task import QuestionAnsweringTask
from bertforge.tasks.token_classification.task import TokenClassificationTask


def test_every_kind_finds_its_task_and_an_unknown_one_is_named():
    assert {task_class(kind) for kind in all_kinds()} == {ClassificationTask, TokenClassificationTask,
                                                          QuestionAnsweringTask}
    assert task_class("token-classification") is TokenClassificationTask
    assert task_class("question-answering") is QuestionAnsweringTask
    with pytest.raises(BertforgeError, match="--task 'tagging' is not known; use one of classification"):
        task_class("tagging")


def test_a_directory_no_task_trained_gets_the_default_task():
    # bertforge pretrain writes "task": "pretraining"; the default task then says the head is missing
    assert isinstance(task_for_model({"task": "pretraining"}, {}), ClassificationTask)
    assert not fine_tuned({"task": "pretraining"}, {"architectures": ["BertForMaskedLM"]})
    assert fine_tuned({}, {"architectures": ["BertForSequenceClassification"]})
    assert isinstance(task_for_model({}, {"architectures": ["BertForQuestionAnswering"]}), QuestionAnsweringTask)


def test_predicting_with_a_pretrained_directory_says_to_fine_tune(tmp_path):
    tokenizer = Tokenizer.train(["the raven sat upon the bust"] * 20, vocab_size=40, min_frequency=1)
    config = BertConfig.preset("tiny", vocab_size=tokenizer.vocab_size)
    torch.manual_seed(0)
    save_pretrained(BertForMaskedLM(config), tmp_path / "bert", tokenizer=tokenizer,
                    metadata={"task": "pretraining"})
    with pytest.raises(BertforgeError, match="has no trained classifier head; fine-tune it first"):
        Predictor.load(tmp_path / "bert")


def test_settings_take_flat_options_and_name_an_unknown_one():
    settings = FineTuneSettings.of(train="t.csv", model="m", out="o", epochs=2, seed=3, batch_size=8)
    assert (settings.training.epochs, settings.training.seed, settings.batch_size) == (2, 3, 8)
    assert settings.to_dict()["epochs"] == 2 and "training" not in settings.to_dict()
    with pytest.raises(BertforgeError, match="unknown option epoch: use the fields of FineTuneSettings"):
        FineTuneSettings.of(train="t.csv", model="m", out="o", epoch=2)
    with pytest.raises(BertforgeError, match="--learning-rate must be positive"):
        FineTuneSettings.of(train="t.csv", model="m", out="o", learning_rate=0)


def test_a_predictors_threshold_is_its_tasks():
    import numpy as np

    task = ClassificationTask.fit(["a|b", "b"], label_separator="|")
    predictor = Predictor(BertForMaskedLM(BertConfig.preset("tiny", vocab_size=30)), None, task)
    outputs = np.array([[2.0, 0.5]])  # probabilities 0.88 and 0.62
    assert predictor.describe(outputs)[0]["label"] == ["a", "b"]
    predictor.threshold = 0.7
    assert task.threshold == 0.7 and predictor.describe(outputs)[0]["label"] == ["a"]
