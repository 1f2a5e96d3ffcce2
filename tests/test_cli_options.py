"""Every option of every command, walked from the built parser: each has a help line that
shows its default once, and each number refuses a clearly bad value with exit 2 and one line,
before any work. An option added later is walked too, with nothing to register."""

from __future__ import annotations

import argparse
import json
import re

import pytest

from bertforge.cli import app
from bertforge.cli.options import Number, layers

# Bad values per kind of number. "-1" is bad for every number but the exceptions below.
BAD_VALUES = {
    "whole": ["-1", "abc", "2.5"],
    "real": ["-1", "abc", "nan"],
    "text": ["-1", "abc"],  # numbers written as text the job reads: counts like 128B, durations, prices
}

# Where -1 is a fine value, and why.
NEGATIVE_ALLOWED = {
    "--null-threshold": "a difference of two scores: below zero answers more questions",
}

# Numbers whose option takes text (the job reads suffixes, commas or ranges in it).
TEXT_NUMBERS = {
    "--time-budget": "90s, 20m, 1.5h",
    ("estimate", "--tokens"): "3.3e9, 128B, comma-separated phases",
    ("estimate", "--steps"): "comma-separated phases",
    ("estimate", "--batch-size"): "comma-separated phases",
    ("estimate", "--seq-len"): "comma-separated phases",
    ("estimate", "--price"): "4.50 or a range 4.50-8.00",
}

# Options a walk passes whatever it checks, and why.
ALWAYS_GIVEN = {
    # a check that went missing then fails at once on the model instead of running the whole demo
    "demo": ["--model", "absent-model"],
}


def commands() -> dict[str, argparse.ArgumentParser]:
    parser = app.build_parser()
    subparsers = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return dict(subparsers.choices)


def arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [action for action in parser._actions if not isinstance(action, argparse._HelpAction)]


def name(action: argparse.Action) -> str:
    return action.option_strings[0] if action.option_strings else action.dest


def kind(command: str, action: argparse.Action) -> str | None:
    """How the walk treats an option's value: a whole number, a real number, a number in text, or None."""
    if not action.option_strings or action.nargs == 0:
        return None
    if action.type is int or action.type is layers or (isinstance(action.type, Number) and action.type.whole):
        return "whole"
    if action.type is float or isinstance(action.type, Number):
        return "real"
    if name(action) in TEXT_NUMBERS or (command, name(action)) in TEXT_NUMBERS:
        return "text"
    return None


def numeric_options() -> list[tuple[str, str, str]]:
    cases = []
    for command, parser in commands().items():
        for action in arguments(parser):
            which = kind(command, action)
            for value in BAD_VALUES.get(which, []):
                if not (value == "-1" and name(action) in NEGATIVE_ALLOWED):
                    cases.append((command, name(action), value))
    return cases


def required_argv(command: str, parser: argparse.ArgumentParser, absent: str) -> list[str]:
    """A command line that gives every required argument, each a path that does not exist."""
    argv = [command]
    for action in arguments(parser):
        if not action.option_strings:
            argv.append(f"{absent}-{action.dest}")
        elif action.required:
            argv += [action.option_strings[0], f"{absent}-{action.dest}"]
    return argv + ALWAYS_GIVEN.get(command, [])


def run_cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    try:
        code = app.main(argv)
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def every_argument():
    top = app.build_parser()
    for action in arguments(top):
        if not isinstance(action, argparse._SubParsersAction):
            yield "bertforge", top, action
    for command, parser in commands().items():
        for action in arguments(parser):
            yield command, parser, action


def expanded_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """An option's line in ``--help``, with its default as the formatter shows it."""
    return parser._get_formatter()._expand_help(action)


# ---------------------------------------------------------------- help


def test_every_argument_has_a_help_line_and_every_number_a_number_type():
    missing = [f"{command} {name(action)}" for command, _, action in every_argument()
               if not (action.help or "").strip()]
    assert not missing, f"no help text: {', '.join(missing)}"
    # An option added with default=3 and no type would take "-1" and "abc" as text, and the walk
    # below would pass it by.
    untyped = [f"{command} {name(action)}" for command, parser in commands().items() for action in arguments(parser)
               if isinstance(action.default, (int, float)) and not isinstance(action.default, bool)
               and kind(command, action) is None]
    assert not untyped, f"numbers without a number type: {', '.join(untyped)}"


def test_no_help_text_says_its_default_twice():
    twice = [f"{command} {name(action)}: {action.help}" for command, _, action in every_argument()
             if len(re.findall(r"\(default\b", action.help or "")) > 1 or "default: None" in (action.help or "")]
    assert not twice, "\n".join(twice)


def test_help_shows_each_default_once_and_as_it_is():
    wrong = []
    for command, parser, action in every_argument():
        shown = expanded_help(parser, action)
        count = len(re.findall(r"\(default\b", shown))
        if count > 1 or "(default: None)" in shown:
            wrong.append(f"{command} {name(action)}: {shown}")
        has_own = action.default not in (None, argparse.SUPPRESS) and not isinstance(action.default, bool)
        if has_own and action.option_strings and f"(default: {action.default})" not in shown:
            wrong.append(f"{command} {name(action)}: default {action.default!r} not shown: {shown}")
    assert not wrong, "\n".join(wrong)


def test_the_formatted_help_of_every_command_shows_each_default_once(capsys):
    for command in commands():
        with pytest.raises(SystemExit):
            app.main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "(default: None)" not in text, command
        assert not re.search(r"\(default: [^)]*\)[^(]{0,3}\(default", text), command


def test_finetune_shows_the_settings_defaults_the_parser_leaves_to_them():
    from bertforge.apps.finetune import FineTuneSettings
    from bertforge.cli.options import flat_settings

    defaults = flat_settings(FineTuneSettings)
    finetune = commands()["finetune"]
    options = {name(action): action for action in arguments(finetune)}
    # None on the command line: the settings' own default, which the help says in words
    for option, setting in (("--window-aggregate", "window_aggregate"), ("--long-text", "long_text")):
        assert options[option].default is None
        assert expanded_help(finetune, options[option]).endswith(f"(default: {defaults[setting]})")
    for option in ("--epochs", "--batch-size", "--learning-rate", "--max-seq-length", "--seed"):
        assert expanded_help(finetune, options[option]).endswith(f"(default: {options[option].default})")


def test_embed_offers_only_what_it_accepts(capsys):
    options = {name(action) for action in arguments(commands()["embed"])}
    assert "--window-aggregate" not in options  # its windows are always averaged into one vector
    assert {"--long-text", "--stride"} <= options


# ---------------------------------------------------------------- bad numbers: exit 2, one line, no work


NUMBERS = numeric_options()
# The walk itself: it finds numbers of every kind, on every sort of command.
assert {("finetune", "--epochs"), ("finetune", "--fine-tune-layers"), ("estimate", "--tokens"), ("demo", "--time-budget"),
        ("serve", "--port"), ("evaluate", "--batch-size")} <= {(command, option) for command, option, _ in NUMBERS}


@pytest.mark.parametrize("command, option, value", NUMBERS)
def test_a_bad_number_is_bad_usage(command, option, value, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # a default output folder would land here, and be seen
    parser = commands()[command]
    argv = required_argv(command, parser, str(tmp_path / "absent")) + [option, value]
    code, out, err = run_cli(capsys, argv)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    words = option.lstrip("-")
    assert option in lines[0] or words.replace("-", "_") in lines[0] or words.replace("-", " ") in lines[0], lines[0]
    assert out == ""
    assert list(tmp_path.iterdir()) == []  # nothing written: no output folder, no file


# ---------------------------------------------------------------- ranges the model sets


def tiny_model(folder, layers=2, positions=64):
    folder.mkdir()
    config = {"model_type": "bert", "vocab_size": 30, "hidden_size": 16, "num_hidden_layers": layers,
              "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": positions}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def labeled_file(folder):
    path = folder / "train.csv"
    path.write_text("text,label\n" + "".join(f"text {i},{'ab'[i % 2]}\n" for i in range(6)), encoding="utf-8")
    return path


@pytest.mark.parametrize("option, value, words", [
    ("--fine-tune-layers", "3", "the model's 2 layers"),
    ("--max-seq-length", "65", "the model's 64 positions"),
])
def test_finetune_refuses_a_range_the_model_sets_before_claiming_the_folder(option, value, words, tmp_path, capsys):
    model, train, out = tiny_model(tmp_path / "model"), labeled_file(tmp_path), tmp_path / "run"
    code, _, err = run_cli(capsys, ["finetune", "--train", str(train), "--model", str(model), "--out", str(out),
                                    option, value])
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and option in err and words in err, err
    assert not out.exists()


def test_finetune_refuses_a_layer_sweep_beyond_the_model(tmp_path, capsys):
    model, train, out = tiny_model(tmp_path / "model"), labeled_file(tmp_path), tmp_path / "sweep"
    code, _, err = run_cli(capsys, ["finetune", "--train", str(train), "--model", str(model), "--out", str(out),
                                    "--sweep-layers", "0,1,4"])
    assert code == 2 and "--sweep-layers" in err and "the model's 2 layers" in err, err
    assert not out.exists()
    code, _, err = run_cli(capsys, ["finetune", "--train", str(train), "--model", str(model), "--out", str(out),
                                    "--sweep-layers", "0,x"])
    assert code == 2 and "--sweep-layers" in err, err


def test_inspect_refuses_more_layers_than_the_model_has(minilm_dir, capsys):
    code, _, err = run_cli(capsys, ["inspect", str(minilm_dir), "--fine-tune-layers", "9"])
    assert code == 2, err
    assert err.strip().splitlines() == [
        "bertforge: error: --fine-tune-layers 9 is more than the model's 6 layers; pass 0 to 6, or all"]


def test_bad_usage_exits_2_where_a_failed_job_exits_1(tmp_path, capsys):
    code, _, err = run_cli(capsys, ["estimate", "--preset", "huge", "--tokens", "1B"])
    assert code == 2 and "huge" in err and "large" in err, err
    code, _, err = run_cli(capsys, ["estimate", "--preset", "base", "--tokens", "abc"])
    assert code == 2 and "'abc' is not a number" in err, err
    code, _, err = run_cli(capsys, ["tokenize", str(tmp_path / "no-model"), "Who?"])
    assert code == 1 and "no such file or directory" in err
