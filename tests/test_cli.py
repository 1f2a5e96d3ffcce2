"""The command line: its error policy, ``--debug`` on either side of the command, and the
options of the jobs held to their settings dataclasses, names and defaults."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import subprocess
import sys

import pytest

from bertforge.cli import app as cli
from bertforge.cli.options import flat_settings


def subparser(name: str) -> argparse.ArgumentParser:
    parser = cli.build_parser()
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return commands.choices[name]


def option_dests(parser: argparse.ArgumentParser) -> set[str]:
    return {action.dest for action in parser._actions if action.dest not in ("help", "debug")}


@dataclasses.dataclass
class Job:
    command: str  # the command module under bertforge.cli
    settings: str  # "module:Class"
    required: list[str]  # the least command line that parses
    renamed: dict[str, str] = dataclasses.field(default_factory=dict)  # option dest -> settings field
    not_settings: set[str] = dataclasses.field(default_factory=set)  # options that are not a setting
    not_options: set[str] = dataclasses.field(default_factory=set)  # settings left off the command line
    # options whose "not given" (None) the command translates into the settings' default
    translated: set[str] = dataclasses.field(default_factory=set)


JOBS = {
    "finetune": Job(
        "finetune", "bertforge.apps.finetune:FineTuneSettings",
        ["--train", "train.csv", "--model", "bert", "--out", "run"],
        renamed={"early_stopping": "early_stopping_patience", "no_frozen_cache": "frozen_cache",
                 "quiet": "progress"},
        not_settings={"sweep_layers"},  # runs the job once per value instead
        # fine-tuning ends after --epochs, evaluates and checkpoints per epoch (or --checkpoint-every):
        # the loop's other ends, cadences and its fused optimizer stay at the loop's defaults
        not_options={"frozen_cache_limit_gb", "stop_after_steps", "max_steps", "time_budget", "eval_every",
                     "log_every", "fused_optimizer"},
        translated={"long_text", "window_aggregate"},  # None keeps evaluate's "as trained" meaning shared
    ),
    "pretrain": Job(
        "pretrain", "bertforge.apps.pretrain:PretrainSettings",
        ["corpus.txt", "--vocab", "vocab", "--out", "run"],
        renamed={"shards": "shards_dir", "quiet": "progress"},
        # pretraining stops on steps, epochs or the clock, never early; the optimizer is always fused
        not_options={"short_sequence_rate", "eval_sequences", "early_stopping_patience", "fused_optimizer"},
        translated={"epochs"},  # not given, with no other end: one pass over the corpus
    ),
    "demo": Job(
        "demo", "bertforge.apps.demo:DemoSettings", [],
        # the demo's own recipe: a user picks where, how long and which model, not the sizes
        not_options={"vocab_size", "layers", "hidden", "seq_len", "pretrain_batch_size", "pretrain_learning_rate",
                     "pair_objective", "fine_tune_layers", "epochs", "learning_rate", "max_seq_length",
                     "max_train_examples", "max_test_examples"},
    ),
}


def settings_class(job: Job) -> type:
    module, name = job.settings.split(":")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("name", sorted(JOBS))
def test_every_option_is_a_setting_and_every_setting_an_option(name):
    job = JOBS[name]
    fields = set(flat_settings(settings_class(job)))
    options = option_dests(subparser(name))
    assert set(job.renamed) <= options and job.not_settings <= options, "a table names an option that is gone"
    assert job.not_options <= fields, "a table names a setting that is gone"
    settings_from_options = {job.renamed.get(dest, dest) for dest in options - job.not_settings}
    assert sorted(settings_from_options - fields) == [], "options without a setting"
    assert sorted(fields - job.not_options - settings_from_options) == [], "settings without an option"


@pytest.mark.parametrize("name", sorted(JOBS))
def test_option_defaults_are_the_settings_defaults(name):
    job = JOBS[name]
    cls = settings_class(job)
    defaults = flat_settings(cls)
    parser = subparser(name)
    for dest in option_dests(parser) - job.not_settings - set(job.renamed) - job.translated:
        if defaults[dest] is not dataclasses.MISSING:
            assert parser.get_default(dest) == defaults[dest], f"--{dest.replace('_', '-')}"
    # Through the command's own translation (renames, inverted flags, 0 for None), all at once.
    command = importlib.import_module(f"bertforge.cli.{job.command}")
    built = flat_settings(command.settings(parser.parse_args(job.required)))
    required = {field: built[field] for field, default in defaults.items() if default is dataclasses.MISSING}
    assert built == flat_settings(getattr(cls, "of", cls)(**required))  # flat options, where settings nest


def test_export_defaults_are_the_exporters():
    from bertforge.apps import export

    parser = subparser("export")
    assert (parser.get_default("tolerance"), parser.get_default("min_agreement"), parser.get_default("opset")) == (
        export.DEFAULT_TOLERANCE, export.DEFAULT_MIN_AGREEMENT, export.DEFAULT_OPSET)


def test_building_the_parser_imports_no_torch():
    code = "import sys; from bertforge.cli.app import build_parser; build_parser(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


@pytest.mark.parametrize("command", cli.COMMANDS, ids=lambda command: command.NAME)
def test_every_command_has_help_with_an_example_and_debug(command, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main([command.NAME, "--help"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    assert "example" in out and "--debug" in out


@pytest.mark.parametrize("argv", [["--debug", "demo", "--time-budget", "soon"],
                                  ["demo", "--time-budget", "soon", "--debug"],
                                  ["demo", "--debug", "--time-budget", "soon"]])
def test_debug_before_or_after_the_command_shows_the_traceback(argv, capsys):
    assert cli.main(argv) == 2  # a time budget that is no duration is bad usage
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.splitlines()[-1] == "bertforge: error: time budget 'soon' is not understood; write e.g. 90s, 20m, " \
                                   "1.5h or 1h30m"


def test_an_error_is_one_line_without_debug(capsys):
    assert cli.main(["demo", "--time-budget", "soon"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "bertforge: error: time budget 'soon' is not understood; write e.g. 90s, 20m, 1.5h or 1h30m"]


def failing(error: BaseException):
    def run(args):
        raise error
    return run


def test_an_unforeseen_failure_is_one_line_with_a_hint(monkeypatch, capsys):
    monkeypatch.setattr("bertforge.cli.demo.run", failing(ValueError("bad value\nmore detail")))
    assert cli.main(["demo"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "bertforge: error: ValueError: bad value (rerun with --debug for the traceback)"]
    assert cli.main(["demo", "--debug"]) == 1
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_an_interrupt_exits_130(monkeypatch, capsys):
    monkeypatch.setattr("bertforge.cli.demo.run", failing(KeyboardInterrupt()))
    assert cli.main(["demo"]) == 130  # the shell's code for Ctrl+C
    assert capsys.readouterr().err == "bertforge: interrupted\n"


def test_bad_usage_exits_2(capsys):
    assert cli.main([]) == 2  # no command: the overview
    assert "COMMAND" in capsys.readouterr().out
    for argv in (["finetune"], ["no-such-command"], ["tokenize", "model", "text", "--no-such-option"]):
        with pytest.raises(SystemExit) as exit:
            cli.main(argv)
        assert exit.value.code == 2



def test_the_task_choices_are_tasks_the_registry_knows():
    from bertforge.tasks import all_kinds

    task = next(action for action in subparser("finetune")._actions if action.dest == "task")
    assert set(task.choices) <= set(all_kinds())
