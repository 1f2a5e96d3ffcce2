"""The training loop: exact resume, accumulation, schedule, early stopping."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from bertforge.errors import BertforgeError
from bertforge.training.arguments import TrainingArguments
from bertforge.training.loop import TrainingLoop, warmup_linear_decay


class ToySource:
    """40 examples in batches of 4, shuffled anew each epoch from (seed, epoch)."""

    def __init__(self, batch_size=4, seed=0):
        generator = torch.Generator().manual_seed(123)
        self.x = torch.randn(40, 8, generator=generator)
        self.y = (self.x.sum(1) > 0).long()
        self.batch_size = batch_size
        self.seed = seed

    def __len__(self):
        return len(self.x) // self.batch_size

    def epoch(self, epoch, start=0):
        order = np.random.default_rng((self.seed, epoch)).permutation(len(self.x))
        for index in range(start, len(self)):
            rows = torch.from_numpy(order[index * self.batch_size:(index + 1) * self.batch_size])
            yield {"x": self.x[rows], "y": self.y[rows]}


class ToyModel(nn.Module):
    def __init__(self, dropout=0.3):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 2))

    def forward(self, x, y):
        return SimpleNamespace(loss=nn.functional.cross_entropy(self.net(x), y))


def make_loop(tmp_path, seed_for_init=0, **overrides):
    torch.manual_seed(seed_for_init)
    settings = dict(epochs=3, learning_rate=1e-2, checkpoint_every=1, log_every=1)
    settings.update(overrides)
    return TrainingLoop(ToyModel(), ToySource(), TrainingArguments(**settings), tmp_path, progress=False)


def test_a_run_stopped_mid_epoch_resumes_to_identical_weights(tmp_path):
    straight = make_loop(tmp_path / "straight")
    straight.run()
    interrupted = make_loop(tmp_path / "interrupted")
    interrupted.run(stop_after_steps=13)  # mid-way through the second epoch
    assert interrupted.state.epoch == 1 and interrupted.state.batch == 3
    # A new process: a fresh model with different random weights, then resume.
    resumed = make_loop(tmp_path / "interrupted", seed_for_init=99)
    resumed.run(resume=True)
    assert resumed.state.step == straight.state.step == 30
    for name, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name


def test_resuming_a_finished_run_changes_nothing(tmp_path):
    loop = make_loop(tmp_path)
    loop.run()
    again = make_loop(tmp_path, seed_for_init=5)
    state = again.run(resume=True)
    assert state.finished and state.step == 30
    assert torch.equal(again.model.net[0].weight, loop.model.net[0].weight)


def test_gradient_accumulation_equals_a_larger_batch(tmp_path):
    torch.manual_seed(0)
    small = TrainingLoop(ToyModel(dropout=0.0), ToySource(batch_size=4),
                         TrainingArguments(epochs=1, gradient_accumulation=2, learning_rate=1e-2,
                                           max_grad_norm=None, warmup_ratio=0.0), tmp_path / "a", progress=False)
    torch.manual_seed(0)
    large = TrainingLoop(ToyModel(dropout=0.0), ToySource(batch_size=8),
                         TrainingArguments(epochs=1, learning_rate=1e-2, max_grad_norm=None, warmup_ratio=0.0),
                         tmp_path / "b", progress=False)
    # Same examples per step: make the large source replay the small one's order.
    large.source.epoch = lambda epoch, start=0: (
        {"x": torch.cat([a["x"], b["x"]]), "y": torch.cat([a["y"], b["y"]])}
        for a, b in zip(*[iter(list(small.source.epoch(epoch)))] * 2))
    small.run()
    large.run()
    assert small.state.step == large.state.step == 5
    assert torch.allclose(small.model.net[0].weight, large.model.net[0].weight, atol=1e-6)


def test_early_stopping_after_patience(tmp_path):
    scores = iter([0.5, 0.7, 0.6, 0.65, 0.9])
    best = []
    loop = make_loop(tmp_path, epochs=10, early_stopping_patience=2)
    loop.evaluate = lambda model: {"accuracy": next(scores)}
    loop.metric = "accuracy"
    loop.on_best = lambda model, metrics: best.append(metrics["accuracy"])
    state = loop.run()
    assert state.stop_reason == "early_stopping"
    assert state.epoch == 4 and best == [0.5, 0.7] and state.best_metric == 0.7


def test_max_steps_and_log(tmp_path):
    loop = make_loop(tmp_path, epochs=None, max_steps=7)
    state = loop.run()
    assert state.step == 7 and state.stop_reason == "max_steps"
    assert (tmp_path / "log.jsonl").read_text().count("train_loss") == 7


def test_schedule_warms_up_then_decays_to_zero():
    factor = warmup_linear_decay(warmup=4, total=12)
    assert [round(factor(step), 3) for step in (0, 3, 4, 8, 12)] == [0.25, 1.0, 1.0, 0.5, 0.0]


def test_nothing_to_train_is_a_clear_error(tmp_path):
    model = ToyModel()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    with pytest.raises(BertforgeError, match="every parameter is frozen"):
        TrainingLoop(model, ToySource(), TrainingArguments(), tmp_path, progress=False)


def test_a_checkpoint_from_other_settings_is_refused(tmp_path):
    make_loop(tmp_path).run(stop_after_steps=2)
    with pytest.raises(BertforgeError, match="other data, model or settings"):
        make_loop(tmp_path, epochs=5).run(resume=True)


class ThreeSizesSource(ToySource):
    """Batches of 3, 4 and 5 examples in turn; ``fixed_shapes`` says whether they count as a
    few fixed shapes (as fixed-shape pretraining batches do) or as any shape."""

    def __init__(self, fixed_shapes):
        super().__init__()
        self.fixed_shapes = fixed_shapes

    def __len__(self):
        return 6

    def epoch(self, epoch, start=0):
        for index in range(start, len(self)):
            size = 3 + index % 3
            yield {"x": self.x[index * 5:index * 5 + size], "y": self.y[index * 5:index * 5 + size]}


@pytest.mark.parametrize("fixed_shapes, graphs", [(True, 3), (False, 1)])
def test_a_compiled_run_compiles_each_fixed_shape_once_or_one_graph_for_any_shape(tmp_path, fixed_shapes, graphs):
    from torch._dynamo.testing import CompileCounterWithBackend
    import torch._dynamo

    counter = CompileCounterWithBackend("eager")
    torch.manual_seed(0)
    loop = TrainingLoop(ToyModel(dropout=0.0), ThreeSizesSource(fixed_shapes), TrainingArguments(epochs=1),
                        tmp_path, progress=False, compile_model=True, compile_options={"backend": counter})
    torch._dynamo.reset()
    try:
        state = loop.run()
    finally:
        torch._dynamo.reset()
    assert state.step == 6 and counter.frame_count == graphs
