"""Nothing already written is lost: output folders, whole-folder publishing, the run lock,
leftover temporaries, Ctrl+C and SIGTERM, predict and evaluate outputs, model folders."""

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from bertforge.apps.finetune import FineTuneSettings, run_finetune
from bertforge.apps.output_folder import OutputFolder
from bertforge.cli.app import main
from bertforge.errors import BertforgeError
from bertforge.io.model_dir import read_state_dict
from bertforge.training.interrupts import StopOnSignal

ROWS = [("Who wrote the poem ?", "HUM"), ("Where is the river ?", "LOC"), ("Who was the first king ?", "HUM"),
        ("Where do penguins live ?", "LOC"), ("Who painted this picture ?", "HUM"), ("Where is the capital ?", "LOC"),
        ("Who sang that song ?", "HUM"), ("Where are the mountains ?", "LOC")]


@pytest.fixture
def train_csv(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,label\n" + "".join(f'"{text}",{label}\n' for text, label in ROWS), encoding="utf-8")
    return path


def settings(model_dir, train, out, **overrides):
    values = dict(train=str(train), model=str(model_dir), out=str(out), epochs=1, batch_size=4,
                  learning_rate=1e-4, val_fraction=0.0, fine_tune_layers=1, progress=False)
    return FineTuneSettings.of(**values | overrides)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


def finetune_cli(model_dir, train, out, *extra):
    return main(["finetune", "--train", str(train), "--model", str(model_dir), "--out", str(out), "--epochs", "1",
                 "--batch-size", "4", "--val-fraction", "0", "--fine-tune-layers", "1", "--quiet", *extra])


# -- 1. an --out that holds something else -------------------------------------------------------


def test_finetune_refuses_an_out_that_holds_a_model_and_leaves_it_untouched(tiny_dir, train_csv, tmp_path, capsys):
    out = tmp_path / "model"
    run_finetune(settings(tiny_dir, train_csv, out))
    before = snapshot(out)
    assert finetune_cli(tiny_dir, train_csv, out) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "already holds a model" in error and "--overwrite" in error
    assert snapshot(out) == before


def test_finetune_refuses_to_write_over_the_model_it_starts_from(tiny_dir, train_csv, tmp_path, capsys):
    # A copy of the pretrained folder, as --out equal to --model would replace it in place.
    model = tmp_path / "pretrained"
    model.mkdir()
    for path in tiny_dir.iterdir():
        if path.is_file():
            (model / path.name).write_bytes(path.read_bytes())
    before = snapshot(model)
    assert finetune_cli(model, train_csv, model) == 1
    assert "is the model this run starts from (--model)" in capsys.readouterr().err
    assert snapshot(model) == before


def test_overwrite_replaces_the_old_folder_whole(tiny_dir, train_csv, tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    for name in ("report.md", "metrics.json", "notes.txt"):  # another run's files
        (out / name).write_text("old\n")
    (out / "log.jsonl").write_text('{"step": 999, "train_loss": 9.0}\n')
    run_finetune(settings(tiny_dir, train_csv, out, overwrite=True, val_fraction=0.25))  # writes a report
    names = {path.name for path in out.iterdir()}
    assert "notes.txt" not in names, "the old content must not stay mixed in"
    assert (out / "report.md").read_text() != "old\n" and (out / "metrics.json").read_text() != "old\n"
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert 999 not in steps
    assert not [name for name in names if name.startswith(".") or name == "checkpoint.pt"]


def test_an_unfinished_run_asks_for_resume_or_overwrite(tiny_dir, train_csv, tmp_path):
    out = tmp_path / "model"
    run_finetune(settings(tiny_dir, train_csv, out, epochs=2, checkpoint_every=1, stop_after_steps=1))
    with pytest.raises(BertforgeError, match="unfinished run; pass --resume to continue it, or --overwrite"):
        run_finetune(settings(tiny_dir, train_csv, out, epochs=2, checkpoint_every=1))
    result = run_finetune(settings(tiny_dir, train_csv, out, epochs=2, overwrite=True))
    assert result["steps"] == 4  # started over: 2 epochs of 2 batches, not the remaining 3


# -- 2. the finished folder as a unit, and one run at a time --------------------------------------


def test_a_failure_while_the_model_is_written_leaves_the_old_model_whole(tiny_dir, train_csv, tmp_path,
                                                                         monkeypatch):
    out = tmp_path / "model"
    run_finetune(settings(tiny_dir, train_csv, out))
    before = snapshot(out)

    from bertforge.tasks.classification.task import ClassificationTask

    def killed(*args, **kwargs):
        raise RuntimeError("killed while the report was written")

    # The new weights and config are written by then: today they land beside the old report.
    monkeypatch.setattr(ClassificationTask, "write_report", killed)
    with pytest.raises(RuntimeError):
        run_finetune(settings(tiny_dir, train_csv, out, overwrite=True, epochs=2, val_fraction=0.25))
    assert snapshot(out) == before
    assert not list(tmp_path.glob(".model.partial-*"))


def test_a_second_run_into_the_same_folder_is_refused(tiny_dir, train_csv, tmp_path, capsys):
    out = tmp_path / "model"
    with OutputFolder(out):  # a run holding the folder, as another process would
        assert finetune_cli(tiny_dir, train_csv, out) == 1
    error = capsys.readouterr().err
    assert f"another run (pid {os.getpid()}) is writing to this folder" in error
    assert finetune_cli(tiny_dir, train_csv, out) == 0  # the lock went with the run that held it
    assert not (tmp_path / ".model.lock").exists()


def test_a_lock_left_by_a_killed_process_does_not_block(tiny_dir, train_csv, tmp_path):
    out = tmp_path / "model"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from bertforge.apps.output_folder import OutputFolder\n"
        f"folder = OutputFolder({str(out)!r}).__enter__(); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(BertforgeError, match=f"another run \\(pid {holder.pid}\\)"):
            OutputFolder(out).__enter__()
    finally:
        holder.kill()
        holder.wait(timeout=30)
    with OutputFolder(out):
        pass


def test_a_kill_between_the_two_renames_gets_the_old_folder_back(tmp_path):
    out = tmp_path / "model"
    aside = tmp_path / ".model.old-1234abcd"  # where the swap had moved the old folder
    aside.mkdir()
    (aside / "config.json").write_text("{}")
    with OutputFolder(out, overwrite=True):
        assert (out / "config.json").read_text() == "{}"
    assert not aside.exists()


# -- 3. leftovers of killed checkpoint writes -------------------------------------------------------


def test_resume_removes_half_written_checkpoints_and_the_finished_folder_holds_none(tiny_dir, train_csv, tmp_path):
    out = tmp_path / "model"
    run_finetune(settings(tiny_dir, train_csv, out, epochs=2, checkpoint_every=1, stop_after_steps=1))
    leftover = out / f".checkpoint.pt.{os.getpid() + 1}.0123abcd.tmp"  # what a kill inside torch.save leaves
    leftover.write_bytes(b"\0" * 1024)
    run_finetune(settings(tiny_dir, train_csv, out, epochs=2, checkpoint_every=1, resume=True))
    names = sorted(path.name for path in out.iterdir())
    assert not [name for name in names if name.endswith(".tmp") or name.startswith("checkpoint")], names
    assert "best-model.safetensors" not in names


def test_keep_checkpoint_keeps_it_in_the_finished_folder(tiny_dir, train_csv, tmp_path):
    out = tmp_path / "model"
    run_finetune(settings(tiny_dir, train_csv, out, keep_checkpoint=True))
    assert (out / "checkpoint.pt").is_file() and (out / "model.safetensors").is_file()


# -- 4. Ctrl+C and SIGTERM ---------------------------------------------------------------------------


STEPS = 400  # 2 epochs of 200 batches: long enough to be stopped part-way on any machine


def _start_training(model_dir, train, out, *extra):
    command = [sys.executable, "-m", "bertforge.cli.app", "finetune", "--train", str(train), "--model",
               str(model_dir), "--out", str(out), "--epochs", "2", "--batch-size", "2", "--val-fraction", "0",
               "--quiet", *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), command


def _wait_for(path: Path, process: subprocess.Popen, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.parametrize("number, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_saves_a_checkpoint_of_the_current_step_and_says_how_to_resume(tiny_dir, train_csv, tmp_path,
                                                                              number, code):
    out = tmp_path / "model"
    train = tmp_path / "long.csv"
    train.write_text(train_csv.read_text() + "".join(f'"{text}",{label}\n' for text, label in ROWS * 49))
    process, command = _start_training(tiny_dir, train, out)
    _wait_for(out / "log.jsonl", process)  # its first line comes at step 50
    process.send_signal(number)
    _, err = process.communicate(timeout=240)
    assert process.returncode == code, err
    last = err.strip().splitlines()[-1]
    assert "--resume" in last and str(out) in last, err
    step = int(last.split("stopped at step ")[1].split()[0])
    checkpoint = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert checkpoint["state"]["step"] == step and 50 <= step < STEPS
    if number == signal.SIGINT:
        resumed = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=600)
        assert resumed.returncode == 0, resumed.stderr
        metadata = json.loads((out / "bertforge.json").read_text())
        assert metadata["result"]["steps"] == STEPS
        assert not (out / "checkpoint.pt").exists()


def test_a_second_ctrl_c_stops_at_once():
    with pytest.raises(KeyboardInterrupt):
        with StopOnSignal(announce=lambda text: None) as stop:
            os.kill(os.getpid(), signal.SIGINT)
            assert stop.received == signal.SIGINT
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler raises before this ends
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# -- 5. predict and evaluate outputs --------------------------------------------------------------


def test_predict_refuses_to_write_over_its_input_and_evaluate_over_the_model(tiny_dir, train_csv, tmp_path,
                                                                               capsys):
    out = tmp_path / "model"
    run_finetune(settings(tiny_dir, train_csv, out))
    text = train_csv.read_text()
    assert main(["predict", "--model", str(out), str(train_csv), "--output", str(train_csv), "--quiet"]) == 1
    assert "is the input file too (--output)" in capsys.readouterr().err
    assert train_csv.read_text() == text

    before = snapshot(out)
    assert main(["evaluate", "--model", str(out), "--data", str(train_csv), "--out", str(out)]) == 1
    assert "is the model folder (--model)" in capsys.readouterr().err
    assert snapshot(out) == before

    report = tmp_path / "evaluation"
    assert main(["evaluate", "--model", str(out), "--data", str(train_csv), "--out", str(report)]) == 0
    assert main(["evaluate", "--model", str(out), "--data", str(train_csv), "--out", str(report)]) == 1
    assert "holds an earlier report; pass --overwrite" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(out), "--data", str(train_csv), "--out", str(report), "--overwrite"]) == 0


# -- 11. model folders as they are read and written ----------------------------------------------------------


def test_saved_weights_are_readable_like_every_other_file(tiny_dir, train_csv, tmp_path):
    out = tmp_path / "model"
    run_finetune(settings(tiny_dir, train_csv, out))
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in out.iterdir() if path.is_file()}
    assert modes["model.safetensors"] == modes["config.json"], modes


def _sharded_folder(tmp_path: Path, shard_name: str) -> Path:
    folder = tmp_path / "sharded"
    folder.mkdir()
    index = {"metadata": {}, "weight_map": {"embeddings.word_embeddings.weight": shard_name}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return folder


def test_an_index_may_not_name_files_outside_the_model_folder(tmp_path):
    save_file({"embeddings.word_embeddings.weight": torch.zeros(2, 2)}, str(tmp_path / "elsewhere.safetensors"))
    folder = _sharded_folder(tmp_path, "../elsewhere.safetensors")
    with pytest.raises(BertforgeError, match="not a file in the model folder"):
        read_state_dict(folder)


def test_an_index_naming_a_fifo_is_refused_instead_of_hanging(tmp_path):
    folder = _sharded_folder(tmp_path, "model-00001.safetensors")
    os.mkfifo(folder / "model-00001.safetensors")
    with pytest.raises(BertforgeError, match="not a regular file"):
        read_state_dict(folder)


def test_pickled_weights_are_refused_without_advising_to_unpickle(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this ran",))

    folder = tmp_path / "pickled"
    folder.mkdir()
    torch.save({"embeddings.word_embeddings.weight": Payload()}, folder / "pytorch_model.bin")
    with pytest.raises(BertforgeError) as caught:
        read_state_dict(folder)
    message = str(caught.value)
    assert "weights_only" not in message and "never unpickled" in message and len(message.splitlines()) == 1


def test_a_refused_resume_names_the_setting_that_differs(tiny_dir, train_csv, tmp_path):
    out = tmp_path / "model"
    run_finetune(settings(tiny_dir, train_csv, out, epochs=2, checkpoint_every=1, stop_after_steps=1))
    with pytest.raises(BertforgeError, match=r"learning_rate was 0\.0001, now 0\.0005"):
        run_finetune(settings(tiny_dir, train_csv, out, epochs=2, checkpoint_every=1, resume=True,
                              learning_rate=5e-4))
