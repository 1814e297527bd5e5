"""A run's output directory: config, git SHA, metrics (JSON lines) and checkpoints.

Checkpoints are written to a temporary file and renamed, so a run killed at any moment
never leaves a truncated checkpoint in place of a valid one.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from .results import RESULTS


def git_sha(cwd: str | Path | None = None) -> str:
    """The current commit of the repository holding sslkit (``unknown`` outside git)."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        # changes to the stored results (chapters/results, which a sweep writes as it goes) are not changes
        # of the code that produced them
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ":(top)",
                                f":(top,exclude){RESULTS.parent.as_posix()}"], cwd=cwd, capture_output=True, text=True,
                               timeout=10).stdout.strip()
        return (sha + ("-dirty" if dirty else "")) if sha else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


TMP_PREFIX = ".tmp-"  # temporary files of atomic writes; a run removes leftovers of a killed one


def atomic_save(obj, path: str | Path, keep_previous: bool = False) -> None:
    """Write ``obj`` to a temporary file beside ``path``, then rename it over ``path``. With
    ``keep_previous`` the file it replaces stays as ``prev.pt`` beside it (the last good
    checkpoint, should the new one ever be damaged on disk)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        if keep_previous and path.exists():
            os.replace(path, path.with_name("prev.pt"))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or resumed here; the message names the file and what to do."""


class RunLocked(RuntimeError):
    """Another process is writing into the same run directory."""


class RunDirError(RuntimeError):
    """A directory that a run must not write into (another run's, or not a run's at all)."""


MARKER = ".sslkit-run"  # written into every directory a run creates or claims
RUN_FILES = {"config.json", "git_sha.txt", "data.json", "metrics.jsonl", "results.json", "eval.json", "checkpoints",
             "tensorboard", ".lock", MARKER}  # what runs write; anything else is the user's


def held_by_another(path: Path) -> bool:
    """Whether a live process holds the run directory ``path`` (its ``.lock``), without taking it."""
    import fcntl

    lock = Path(path) / ".lock"
    if not lock.exists():
        return False
    with open(lock, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
    return False


class RunDir:
    """Write a run's record into ``path``: ``config.json``, ``git_sha.txt``, ``metrics.jsonl``,
    ``checkpoints/last.pt`` (and ``best.pt``)."""

    def __init__(self, path: str | Path, writer: bool = True, tensorboard: bool = False):
        self.path = Path(path)
        self.writer = writer  # False on the other processes of a distributed run: they read only
        self._tb = None
        self._lock = None
        if writer:
            self.path.mkdir(parents=True, exist_ok=True)
            if tensorboard:
                from torch.utils.tensorboard import SummaryWriter  # optional dependency

                self._tb = SummaryWriter(str(self.path / "tensorboard"))

    def lock(self) -> None:
        """Hold the directory for this process until it exits (an OS lock on ``.lock``, released
        even when the process is killed), so two runs started into one directory never
        interleave; then remove temporary files a killed run left behind. Raises ``RunLocked``."""
        if not self.writer or self._lock is not None:
            return
        import fcntl

        f = open(self.path / ".lock", "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            raise RunLocked(f"{self.path} is in use by another run (it holds {self.path / '.lock'}); wait for it "
                            "to finish, or choose another --output_dir") from None
        self._lock = f
        (self.path / MARKER).write_text("a run directory of sslkit.train: config, metrics, checkpoints\n")
        last, prev = self.path / "checkpoints" / "last.pt", self.path / "checkpoints" / "prev.pt"
        if prev.exists() and not last.exists():  # killed between the two renames of a save
            os.replace(prev, last)
        for leftover in [*self.path.glob(TMP_PREFIX + "*"), *(self.path / "checkpoints").glob(TMP_PREFIX + "*")]:
            leftover.unlink(missing_ok=True)

    def unlock(self) -> None:
        """Let the directory go (a process that exits lets it go anyway)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def write_config(self, config_dict: dict, data_id: dict | None = None) -> None:
        """``config.json``, ``git_sha.txt`` and (with ``data_id``) ``data.json``: which data the run trains on."""
        if not self.writer:
            return
        (self.path / "config.json").write_text(json.dumps(config_dict, indent=2, sort_keys=True, default=str))
        (self.path / "git_sha.txt").write_text(git_sha() + "\n")
        if data_id is not None:
            (self.path / "data.json").write_text(json.dumps(data_id, indent=2))

    def _replace(self, name: str, text: str) -> Path:
        """Write ``name`` atomically (a temporary file, then a rename): a killed writer leaves the old file
        or none, never half of one; ``lock`` removes the temporary files a killed run left."""
        path = self.path / name
        if self.writer:
            tmp = self.path / f"{TMP_PREFIX}{name}"
            tmp.write_text(text)
            os.replace(tmp, path)
        return path

    def write_results(self, results: dict) -> Path:
        """``results.json`` (the final evaluation): a run killed while writing it leaves no half file
        that would mark it finished."""
        return self._replace("results.json", json.dumps(results, indent=2))

    def log(self, metrics: dict) -> None:
        if not self.writer:
            return
        record = {"time": round(time.time(), 3), **metrics}
        with open(self.path / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record, default=float) + "\n")
        if self._tb is not None:
            step = int(metrics.get("epoch", 0))
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "epoch":
                    self._tb.add_scalar(key, value, step)
            self._tb.flush()

    def save_checkpoint(self, state: dict, name: str = "last") -> Path:
        """Write ``checkpoints/NAME.pt`` atomically; the previous ``last.pt`` is kept as ``prev.pt``."""
        path = self.path / "checkpoints" / f"{name}.pt"
        if self.writer:
            atomic_save(state, path, keep_previous=(name == "last"))
        return path

    def has_checkpoint(self, name: str = "last") -> bool:
        return (self.path / "checkpoints" / f"{name}.pt").exists()

    def load_checkpoint(self, name: str = "last", map_location=None) -> dict:
        """The checkpoint ``NAME.pt``; a damaged file raises ``CheckpointError`` naming it and, when
        ``prev.pt`` (the checkpoint before it) reads, saying how to resume from that one."""
        path = self.path / "checkpoints" / f"{name}.pt"
        try:
            return torch.load(path, map_location=map_location, weights_only=False)
        except FileNotFoundError:
            raise
        except Exception as exc:  # truncated or corrupt: zip/pickle/EOF errors of any kind
            prev = path.with_name("prev.pt")
            offer = "; no earlier checkpoint is kept: delete the directory to start again"
            if name != "prev" and prev.exists():
                try:
                    epoch = torch.load(prev, map_location="cpu", weights_only=False)["epoch"]
                    offer = (f". The previous checkpoint {prev} (after epoch {epoch}) reads: "
                             f"`mv {prev} {path}` and rerun the same command to resume from it")
                except Exception:
                    offer = f"; the previous checkpoint {prev} is damaged too: delete the directory to start again"
            raise CheckpointError(f"checkpoint {path} is damaged ({type(exc).__name__}: {str(exc)[:120]}){offer}") \
                from None

    def rewrite_metrics(self, records: list[dict]) -> None:
        """Replace metrics.jsonl by ``records`` (atomically), e.g. when resuming from an earlier checkpoint."""
        self._replace("metrics.jsonl", "".join(json.dumps(r, default=float) + "\n" for r in records))

    def read_metrics(self) -> list[dict]:
        f = self.path / "metrics.jsonl"
        return [json.loads(line) for line in f.read_text().splitlines()] if f.exists() else []


def method_from_checkpoint(state: dict, cfg=None, default_samples: int | None = None):
    """Rebuild the method a checkpoint was saved from (its config unless ``cfg`` is given)
    and load its weights and buffers. Per-image state (pseudo-labels, memory bank) fixes the
    size of the training set; other methods use ``default_samples``."""
    from .config import config_from_dict
    from .methods import build_method

    cfg = cfg or config_from_dict(state["config"])
    model = state["model"]
    n = state.get("num_samples")  # saved since the checkpoint format has it; older ones: from the buffers
    if n is None:
        n = (model["labels"].shape[-1] if "labels" in model else
             model["bank"].shape[0] if "bank" in model else default_samples)
    if n is None:
        raise ValueError("default_samples is needed for a method without per-image state")
    method = build_method(cfg, n)
    method.load_state_dict(model)
    return method


def load_run(path: str | Path, checkpoint: str = "last", device=None):
    """A finished or running ``sslkit.train`` run: a ``sslkit.trained.TrainedRun`` (``.method``,
    ``.config``, ``.metrics``; ``.features(images)`` and ``.assign(images)`` on new images; it
    unpacks as ``method, config, metrics``), or ``None`` (with a message) when ``path`` holds no
    checkpoint, so a chapter can train instead of failing. ``path``: the run directory (or a
    checkpoint file in its ``checkpoints/``). A checkpoint this version cannot use raises
    ``CheckpointError`` saying why."""
    from .config import config_from_dict
    from .trained import TrainedRun, checkpoint_format

    path = Path(path).expanduser()
    if path.suffix == ".pt" and path.parent.name == "checkpoints":
        path, checkpoint = path.parent.parent, path.stem
    run = RunDir(path, writer=False)  # reads only: creates nothing
    if not run.has_checkpoint(checkpoint):
        print(f"no checkpoint at {run.path / 'checkpoints' / (checkpoint + '.pt')}; train instead "
              "(the command that creates it is in the run's README or the chapter)")
        return None
    state = run.load_checkpoint(checkpoint, map_location="cpu")
    checkpoint_format(state, run.path / "checkpoints" / f"{checkpoint}.pt")
    method = method_from_checkpoint(state, default_samples=0)  # no per-image state: the size is unused
    if device is not None:
        method.to(device)
    return TrainedRun(method, config_from_dict(state["config"]), run.read_metrics(), run.path, state)


def evaluate_run(path: str | Path, train, test, device=None, checkpoint: str = "last") -> dict | None:
    """A longer ``sslkit.train`` run beside a chapter's live one: the kNN and linear-probe
    accuracy of its checkpoint on ``train`` / ``test`` (``labdata.LabData``), with its config,
    metrics and epochs done — or ``None`` (with a message) when ``path`` holds no checkpoint,
    so the chapter goes on with its live run."""
    from .eval.report import evaluate_method

    loaded = load_run(path, checkpoint, device)
    if loaded is None:
        return None
    method, cfg, metrics = loaded
    results = evaluate_method(method, train.images, train.labels, test.images, test.labels,
                              knn_k=cfg.knn_k, knn_temperature=cfg.knn_temperature)
    return {**results, "epochs": len(metrics), "config": cfg, "metrics": metrics, "method": method}
