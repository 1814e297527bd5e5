"""What a command may do with its run directory, decided before any work.

A run directory is only ever written by the run it belongs to. ``plan_run(out, cfg)`` says
whether ``out`` is a new run, the same run to resume (its config equals this one), or a
finished run of this config (nothing to do); anything else raises ``RunDirError`` with what
to do: another run's directory, a directory of files no run wrote, or a run whose records
would be lost (metrics or results without a checkpoint to resume from).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .config import ConfigError
from .runs import MARKER, RUN_FILES, RunDirError, RunLocked, held_by_another

# where the directory is named from, and how many processes decode the images, do not make another run
SAME_RUN_IGNORES = ("output_dir", "workers")


def with_defaults(saved: dict) -> dict:
    """A saved config with the options added to sslkit since it was written at their defaults
    (so an older run directory still resumes); unchanged if it no longer parses."""
    from .config import config_from_dict

    try:
        return json.loads(json.dumps(config_from_dict(saved).to_dict(), default=str))
    except (ConfigError, KeyError, TypeError):
        return saved


def config_diff(old: dict, new: dict, prefix: str = "") -> list[str]:
    """The keys on which two configs (as dicts) differ, as ``key: old there, new now`` lines. A method
    parameter the new config leaves to the data (``Method.resolved_from_data`` at 0) matches any value."""
    from .registry import METHODS

    cls = METHODS.get(new.get("method") or old.get("method"))
    open_keys = {f"params.{k}" for k in getattr(cls, "resolved_from_data", ())}
    diffs = []
    for key in sorted(set(old) | set(new)):
        if not prefix and key in SAME_RUN_IGNORES:
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += [d for d in config_diff(a, b, f"{prefix}{key}.") if d.split(":")[0] not in open_keys
                      or b.get(d.split(":")[0].split(".", 1)[1]) != 0]
        elif a != b and not (isinstance(a, list) and isinstance(b, tuple) and a == list(b)):
            diffs.append(f"{prefix}{key}: {a!r} there, {b!r} now")
    return diffs


def check_output_dir(out: Path) -> None:
    """Refuse an output path that cannot hold a run: a file, or a place this user cannot write."""
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--output_dir={out} is a file, not a directory; choose another --output_dir")
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise RunDirError(f"--output_dir={out}: {probe} is not writable by this user; choose another --output_dir")


@dataclass
class RunPlan:
    path: Path
    action: str  # "new", "restart" (a run that never finished an epoch), "resume" or "done"


def _read_config(out: Path) -> dict | None:
    try:
        saved = json.loads((out / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return saved if isinstance(saved, dict) and isinstance(saved.get("method"), str) else None


def plan_run(out: str | Path, cfg_dict: dict, writer: bool = True) -> RunPlan:
    """What to do with ``out`` for a run of ``cfg_dict`` (``TrainConfig.to_dict()``); see the module.
    ``writer``: False for the other processes of a ``torchrun`` run, which read the directory that
    the first process holds (its lock is then no refusal)."""
    out = Path(out).expanduser()
    check_output_dir(out)
    if not out.exists() or not any(out.iterdir()):
        return RunPlan(out, "new")
    if writer and held_by_another(out):
        raise RunLocked(f"{out} is in use by another run (it holds {out / '.lock'}); wait for it to finish, or "
                        "choose another --output_dir")
    saved = _read_config(out) if (out / "config.json").exists() else None
    ours = (out / MARKER).exists() or (saved is not None and (out / "git_sha.txt").exists())
    if not ours:
        names = ", ".join(sorted(p.name for p in out.iterdir())[:5])
        raise RunDirError(f"{out} holds files no sslkit run wrote ({names}); a run starts only in a new or empty "
                          "directory: choose another --output_dir")
    ckpt = out / "checkpoints"
    finished, resumable = (out / "results.json").exists(), (ckpt / "last.pt").exists() or (ckpt / "prev.pt").exists()
    if finished or resumable:
        if saved is None:
            raise RunDirError(f"{out} is a run directory whose config.json is missing or unreadable; move it away or "
                              "choose another --output_dir")
        diffs = config_diff(with_defaults(saved), json.loads(json.dumps(cfg_dict, default=str)))
        if diffs:
            raise RunDirError(f"{out} holds another run (config.json differs: {'; '.join(diffs[:5])}). Choose "
                              "another --output_dir, or repeat that run's exact options to resume it.")
        return RunPlan(out, "done" if finished else "resume")
    metrics = out / "metrics.jsonl"
    if metrics.exists() and metrics.read_text().strip():
        raise RunDirError(f"{out} holds the records of a run ({len(metrics.read_text().splitlines())} epoch(s) in "
                          "metrics.jsonl) but no checkpoint to resume from (checkpoints/ was deleted?): starting "
                          "again would overwrite them. Move the directory away, or choose another --output_dir")
    foreign = sorted(p.name for p in out.iterdir() if p.name not in RUN_FILES)
    if foreign:
        raise RunDirError(f"{out} holds a run that never finished an epoch and files no run wrote "
                          f"({', '.join(foreign[:5])}); move them away or choose another --output_dir")
    return RunPlan(out, "restart")  # a run killed (or failed) in its first epoch: nothing to lose
