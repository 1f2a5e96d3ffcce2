"""The processes that split a corpus into sentences end with the process that started them."""

import os
import signal
import subprocess
import sys
import time

import pytest

psutil = pytest.importorskip("psutil", reason="these tests watch processes with psutil")

PARAGRAPH = ("Mr. Poe met Dr. Griswold at {n} o'clock. They argued, e.g. about E. A. Poe's tales, for an hour. "
             "“Is it {n}?” he asked. “It is,” said she; the price was 3.50 dollars. Wait... then nothing.")


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """A corpus that takes two workers many seconds to split, and a vocabulary for it.

    A paragraph per line with a quotation never closed: where a worker is handed the
    whole file as one task, it stays busy for hours after its parent is gone."""
    from bertforge.text.tokenizer import Tokenizer

    folder = tmp_path_factory.mktemp("kill")
    text = "“" + "\n".join(PARAGRAPH.format(n=n) for n in range(20_000))  # ~3.5 MB of prose
    (folder / "corpus.txt").write_text(text, encoding="utf-8")
    Tokenizer.train([PARAGRAPH.format(n=n) for n in range(50)], vocab_size=120).save(folder / "vocab")
    return folder


def start(job, name):
    command = [sys.executable, "-m", "bertforge", "pretrain", str(job / "corpus.txt"), "--vocab", str(job / "vocab"),
               "--out", str(job / name), "--shards", str(job / f"{name}-shards"), "--workers", "2",
               "--preset", "tiny", "--seq-len", "32", "--max-steps", "1", "--pair-objective", "none", "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    parent = psutil.Process(process.pid)
    workers = []
    while len(workers) < 2:  # the workers start when the first prose is read
        if process.poll() is not None:
            pytest.fail(f"pretrain ended before its workers started: {process.stderr.read().decode()[-2000:]}")
        workers = parent.children(recursive=True)
        time.sleep(0.05)
    time.sleep(1.0)  # well into the corpus: every worker holds tasks
    assert all(worker.status() != psutil.STATUS_ZOMBIE for worker in workers)
    return process, workers


def gone_soon(workers, seconds: float = 10.0) -> list:
    """The workers still running (not dead, not a zombie) after up to ``seconds``."""
    deadline = time.monotonic() + seconds
    alive = workers
    while alive and time.monotonic() < deadline:
        alive = [worker for worker in alive if _running(worker)]
        time.sleep(0.1)
    return alive


def _running(worker) -> bool:
    try:
        return worker.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _kill_all(workers):
    for worker in workers:
        try:
            worker.kill()
        except psutil.NoSuchProcess:
            pass


def test_workers_die_when_their_parent_is_killed(job):
    process, workers = start(job, "killed")
    try:
        process.kill()  # SIGKILL: the parent runs nothing more, no finally, no atexit
        process.wait()
        assert gone_soon(workers) == []
    finally:
        _kill_all(workers)


def test_ctrl_c_ends_the_workers_and_the_job_without_a_traceback(job):
    process, workers = start(job, "interrupted")
    try:
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl+C sends: the whole process group
        _, error = process.communicate()
        assert process.returncode == 130
        assert "Traceback" not in error.decode()
        assert gone_soon(workers) == []
    finally:
        _kill_all(workers)
