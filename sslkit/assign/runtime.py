"""What building and grading need from this machine: otter-grader, an sslkit that otter's kernels
can import, and a way to run a command in its own process group with a time limit."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = REPO / "chapters" / "assignments"
DEFAULT_TIMEOUT = 180


class AssignError(RuntimeError):
    """A mistake the teacher can fix (unknown chapter, missing tool, a failing key, a bad option)."""


def need_otter() -> None:
    try:
        importlib.import_module("otter")
    except ImportError as err:
        raise AssignError("otter-grader is not installed: `pip install -r requirements.txt` "
                          "(or `pip install otter-grader==7.0.0`)") from err


_IMPORTS_SSLKIT: set[str] = set()   # interpreters whose probe passed (grade may call build)


def need_importable_sslkit() -> None:
    """otter runs each notebook in a fresh kernel in a scratch folder, where only an installed
    sslkit can be imported: without one every key that calls ``sk`` would fail as if the
    solution were wrong. A passing probe (1.5 s: it imports torch) is not repeated."""
    if sys.executable in _IMPORTS_SSLKIT:
        return
    with tempfile.TemporaryDirectory(prefix="sslkit-import-") as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        probe = subprocess.run([sys.executable, "-c", "import sslkit"], cwd=tmp, env=env,
                               capture_output=True, text=True)
    if probe.returncode != 0:
        raise AssignError("sslkit cannot be imported from outside the repository by this Python "
                          f"({sys.executable}), so the chapters' kernels could not run: install it "
                          f"with `pip install -e {REPO}` (or `pip install -r requirements.txt` in "
                          "the repository) and rerun")
    _IMPORTS_SSLKIT.add(sys.executable)


def run_group(cmd, cwd, timeout, env=None) -> tuple[int | None, str, bool]:
    """Run ``cmd`` in its own process group; on timeout kill the group (kernels included).
    Returns (exit code or None, stdout and stderr together, timed out)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out, False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return None, out, True
