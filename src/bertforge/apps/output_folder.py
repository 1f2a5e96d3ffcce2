"""The folder a training job writes: claimed by one run, refused when it holds other work,
and replaced as a whole when the run ends.

A run works inside ``--out`` (its checkpoint, log and best weights); the finished model
is built in a staging folder beside it and renamed into place, so a reader sees the old
folder or the new one, never a mix. What ``--out`` may hold when a run starts:

- nothing (or nothing yet): a fresh run;
- the checkpoint of an unfinished run: ``--resume`` continues it, ``--overwrite`` starts over;
- anything else (a model, another job's files, the ``--model`` being fine-tuned): refused,
  unless ``--overwrite``; the old content then stays readable until the new model replaces it.

A lock beside the folder (``.NAME.lock``, held with ``flock``, so a killed run never
leaves it taken) refuses a second run into the same folder at the same time.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from bertforge.errors import BertforgeError
from bertforge.files import TEMPORARY_PATTERN, replacing_folder

# What a run writes into --out while it trains (training/loop.py and the jobs' best weights).
RUN_FILES = ("checkpoint.pt", "log.jsonl", "best-model.safetensors")
_RANK_FILE = re.compile(r"checkpoint\.rank\d+\.rng")
# Where a run that replaces a folder holding a model works until it publishes.
WORK = "unfinished-run"


def is_run_file(name: str) -> bool:
    """Whether ``name`` is one of the files a run writes while it trains.

    >>> is_run_file("checkpoint.pt"), is_run_file("checkpoint.rank3.rng"), is_run_file("config.json")
    (True, True, False)
    """
    return name in RUN_FILES or bool(_RANK_FILE.fullmatch(name)) or bool(TEMPORARY_PATTERN.fullmatch(name))


class OutputFolder:
    """Claim ``out`` for one training run; ``publish()`` puts the finished folder in place.

    ``work`` is where the run keeps its checkpoint, log and best weights: ``out`` itself,
    or, while ``--overwrite`` replaces a folder that holds a model, its subfolder
    ``unfinished-run/``, so the old model and its log stay whole until the new one is in.

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "model"
    >>> with OutputFolder(out) as folder:
    ...     with folder.publish() as staging:
    ...         _ = (staging / "config.json").write_text("{}")
    >>> sorted(p.name for p in out.iterdir())
    ['config.json']
    >>> try:
    ...     OutputFolder(out).__enter__()
    ... except BertforgeError as error:
    ...     print(str(error).split(": ", 1)[1])
    already holds a model (config.json); pass a new --out, or --overwrite to replace it
    """

    def __init__(self, out: str | os.PathLike, *, resume: bool = False, overwrite: bool = False,
                 source: str | os.PathLike | None = None, main_process: bool = True):
        self.out = Path(out)
        self.work = self.out
        self.resume = resume
        self.overwrite = overwrite
        self.source = Path(source) if source is not None else None  # the model the run starts from
        self.main_process = main_process  # under torchrun only process 0 claims and publishes
        self._lock = None

    # -- claiming -------------------------------------------------------------------

    def __enter__(self) -> "OutputFolder":
        # Only a training run claims a folder, and it has torch; an evaluation report (report_folder)
        # of a model exported to ONNX must not need it.
        from bertforge.training import distributed

        if not self.main_process:
            distributed.barrier()  # process 0 claims and cleans first: then all find the same work folder
            self.work = self._work_folder()
            return self
        if self.out.exists() and not self.out.is_dir():
            raise BertforgeError(f"{self.out}: exists and is not a folder; pass a folder path for --out")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._lock = _FolderLock(self.out.parent / f".{self.out.name}.lock")
        try:
            self._lock.acquire()
            _recover_interrupted_swap(self.out)
            self._check()
            self.work = self._work_folder()
            self._clean()
        except BaseException:
            self._lock.release()
            raise
        self.work.mkdir(parents=True, exist_ok=True)
        distributed.barrier()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._lock is not None:
            self._lock.release()

    def _foreign(self) -> list[str]:
        """What ``out`` holds besides a run's own files."""
        if not self.out.is_dir():
            return []
        return sorted(path.name for path in self.out.iterdir() if not is_run_file(path.name) and path.name != WORK)

    def _work_folder(self) -> Path:
        if self.resume:
            for folder in (self.out, self.out / WORK):
                if (folder / "checkpoint.pt").is_file():
                    return folder
        return self.out / WORK if self._foreign() else self.out

    def _check(self) -> None:
        if self.resume and (self._work_folder() / "checkpoint.pt").is_file():
            return  # this run's own checkpoint, whatever a kill left beside it
        if self.overwrite:
            return
        if self.source is not None and self.source.exists() and self.out.exists() and \
                self.out.resolve() == self.source.resolve():
            raise BertforgeError(f"{self.out}: is the model this run starts from (--model); pass another --out, "
                                 "or --overwrite to replace it with the trained model")
        others = self._foreign()
        if others:
            shown = ", ".join(others[:4]) + (f" and {len(others) - 4} more" if len(others) > 4 else "")
            nothing_to_resume = (" and no checkpoint to resume (a finished run keeps one with --keep-checkpoint)"
                                 if self.resume else "")
            raise BertforgeError(f"{self.out}: already holds a model ({shown}){nothing_to_resume}; pass a new --out, "
                                 "or --overwrite to replace it")
        if (self.out / "checkpoint.pt").is_file() or (self.out / WORK / "checkpoint.pt").is_file():
            raise BertforgeError(f"{self.out}: holds the checkpoint of an unfinished run; pass --resume to "
                                 "continue it, or --overwrite to start over")
        # Otherwise: a log or temporary files of a run killed before its first checkpoint.

    def _clean(self) -> None:
        """Remove what killed runs left: temporary files, staging folders, and (for a run
        that does not resume) the old run's checkpoint, log and best weights."""
        starts_over = not (self.resume and (self.work / "checkpoint.pt").is_file())
        if starts_over and (self.out / WORK).is_dir():
            shutil.rmtree(self.out / WORK)
        for folder in {self.out, self.work}:
            if folder.is_dir():
                for path in folder.iterdir():
                    if TEMPORARY_PATTERN.fullmatch(path.name) or (starts_over and is_run_file(path.name)
                                                                  and folder == self.work):
                        path.unlink(missing_ok=True)
        for leftover in self.out.parent.glob(f".{glob.escape(self.out.name)}.partial-*"):
            shutil.rmtree(leftover, ignore_errors=True)

    # -- publishing -----------------------------------------------------------------

    @contextmanager
    def publish(self, keep: tuple[str, ...] = ()) -> Iterator[Path]:
        """Yield an empty staging folder for the finished model; when the block succeeds it
        replaces ``out`` whole. ``keep`` names files of the run (``checkpoint.pt``,
        ``log.jsonl``) to carry over into the finished folder."""
        with replacing_folder(self.out) as staging:
            yield staging
            for name in keep:
                if (self.work / name).is_file() and not (staging / name).exists():
                    _link_or_copy(self.work / name, staging / name)


# What says a folder is a model directory, not a report.
_MODEL_FILES = ("config.json", "bert_config.json", "model.safetensors", "model.safetensors.index.json",
                "pytorch_model.bin", "model.onnx")


@contextmanager
def report_folder(out: str | os.PathLike, model: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """A staging folder for an evaluation report, put in place of ``out`` when the block
    succeeds. Refused: the model folder itself (its training metrics and report would be
    replaced) or any model folder; a folder of other files; an earlier report, unless
    ``overwrite``.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = (root / "model").mkdir(), (root / "model" / "config.json").write_text("{}")
    >>> try:
    ...     with report_folder(root / "model", root / "model"):
    ...         pass
    ... except BertforgeError as error:
    ...     print(str(error).split(": ", 1)[1])
    is the model folder (--model); pass another --out for the evaluation report
    """
    check_report_folder(out, model, overwrite)
    with replacing_folder(out) as staging:
        yield staging


def check_report_folder(out: str | os.PathLike, model: str | os.PathLike, overwrite: bool = False) -> None:
    """The refusals of :func:`report_folder`, to make before the evaluation runs.

    >>> import tempfile
    >>> check_report_folder(Path(tempfile.mkdtemp()) / "new-report", "runs/trec")  # a new folder: fine
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BertforgeError(f"{out}: exists and is not a folder; pass a folder path for --out")
    if out.is_dir() and Path(model).exists() and out.resolve() == Path(model).resolve():
        raise BertforgeError(f"{out}: is the model folder (--model); pass another --out for the evaluation report")
    names = sorted(path.name for path in out.iterdir()) if out.is_dir() else []
    if any(name in _MODEL_FILES for name in names):
        raise BertforgeError(f"{out}: holds a model; pass another --out for the evaluation report")
    if names and "report.md" not in names:
        raise BertforgeError(f"{out}: holds other files ({', '.join(names[:3])}); pass a new or empty folder for --out")
    if names and not overwrite:
        raise BertforgeError(f"{out}: holds an earlier report; pass --overwrite to replace it")


def kept_run_files(work: str | os.PathLike, keep_checkpoint: bool) -> tuple[str, ...]:
    """The run's files a finished folder carries: its log, and with ``keep_checkpoint`` the
    checkpoint (and each process's random state) a later ``--resume`` reads.

    >>> kept_run_files("runs/x", keep_checkpoint=False)
    ('log.jsonl',)
    """
    names = ["log.jsonl"]
    if keep_checkpoint:
        names.append("checkpoint.pt")
        work = Path(work)
        if work.is_dir():
            names += sorted(path.name for path in work.iterdir() if _RANK_FILE.fullmatch(path.name))
    return tuple(names)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)  # the same file system: no copy of a checkpoint's gigabytes
    except OSError:
        shutil.copy2(source, target)


def _recover_interrupted_swap(out: Path) -> None:
    """A kill between moving the old folder aside and renaming the new one in (see
    ``replacing_folder``) leaves no ``out`` and one ``.out.old-*``: put the old one back.
    With ``out`` in place, the old ones are leftovers to remove."""
    earlier = sorted(out.parent.glob(f".{glob.escape(out.name)}.old-*"), key=lambda p: p.stat().st_mtime)
    if not out.exists() and earlier:
        earlier.pop().rename(out)
    for leftover in earlier:
        shutil.rmtree(leftover, ignore_errors=True)


class _FolderLock:
    """An exclusive ``flock`` on a file beside the folder, released by the kernel when the
    process dies, however it dies; the file names the holder's process for the message."""

    def __init__(self, path: Path):
        self.path = path
        self.handle = None

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # no flock on this platform: no protection against a second run
            return
        while True:
            handle = open(self.path, "a+", encoding="utf-8")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                handle.close()
                raise BertforgeError(f"{self.path.parent / self.path.name[1:-5]}: another run ({holder}) is writing "
                                     "to this folder; wait for it to end, or pass another --out") from None
            # The holder before us may have removed the file after we opened it: lock the file
            # that is there now, or nobody else can see our lock.
            try:
                same = os.stat(self.path).st_ino == os.fstat(handle.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            handle.close()
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self.handle = handle

    def release(self) -> None:
        if self.handle is None:
            return
        self.path.unlink(missing_ok=True)
        self.handle.close()  # closing drops the flock
        self.handle = None
