"""``build``: otter-grader's ``otter assign`` on each teacher source, laid out for a course.

* ``DIR/student/NN_slug.ipynb``: to hand out; no solutions, no hidden tests.
* ``DIR/solutions/NN_slug.ipynb``: the answer key, with the public tests only (it can be
  published once the assignment is over).
* ``DIR/grader/NN_slug.zip``: what ``grade`` needs; it holds the hidden tests: keep it private.

``otter assign`` executes every test, hidden ones included, against the solutions and a
failing one stops the build. Both editions' first cell finds its own notebook under any file
name (:mod:`sslkit.assign.student`) and keeps what an answer prints from failing a check
(:mod:`sslkit.assign.doctests`).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from .runtime import AssignError, need_importable_sslkit, need_otter, run_group
from .source import check_sources, read_source, sources

INIT_CELL = """# Initialize Otter: the checks find this notebook's file under any name, and what an answer prints
# does not fail them
import otter
from sslkit.assign import doctests, student
doctests.install()
grader = otter.Notebook(student.this_notebook("{name}"), tests_dir=None)"""


def build(out: Path, chapters: list[str] | None = None, run_tests: bool = True, folder: Path | None = None,
          log=print) -> list[Path]:
    """Write ``out/student/``, ``out/solutions/`` and ``out/grader/`` for each chapter's source
    in ``folder`` (default: the book's ``chapters/assignments/``). Every problem a teacher can
    fix in the sources (points in a prompt that differ from the configuration, ...) is
    reported before any work; with ``run_tests`` (the default) a failing key stops the build."""
    need_otter()
    out = Path(out).expanduser()
    bad = next((p for p in (out, out / "student", out / "solutions", out / "grader") if p.exists() and not p.is_dir()),
               None)
    if bad is not None:
        raise AssignError(f"--out {out}: {bad} is a file, not a folder; choose another --out")
    srcs = sources(chapters, folder)
    check_sources(srcs)
    need_importable_sslkit()
    for sub in ("student", "solutions", "grader"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    made = []
    with tempfile.TemporaryDirectory(prefix="sslkit-assign-") as tmp:
        for py in srcs:
            dist = _otter_assign(py, Path(tmp) / py.stem, run_tests)
            name = f"{py.stem}.ipynb"
            _write_edition(dist / "student" / name, out / "student" / name, public_only=False)
            _write_edition(dist / "autograder" / name, out / "solutions" / name, public_only=True)
            zips = sorted((dist / "autograder").glob("*.zip"))
            shutil.copy(zips[-1], out / "grader" / f"{py.stem}.zip")
            made.append(out / "student" / name)
            if log:
                proven = " - every test passes against the solutions" if run_tests else ""
                log(f"{py.stem}: student/{name}, solutions/{name} (public tests only), grader/{py.stem}.zip "
                    f"(hidden tests: keep private){proven}")
    return made


def _otter_assign(py: Path, work: Path, run_tests: bool) -> Path:
    import nbformat

    work.mkdir()
    master = work / f"{py.stem}.ipynb"
    nbformat.write(read_source(py), master)
    cmd = [sys.executable, "-m", "otter", "assign", "--no-pdfs", master.name, "dist"]
    if not run_tests:
        cmd.insert(4, "--no-run-tests")
    rc, text, timed_out = run_group(cmd, work, timeout=600)
    failed = "Test case failed" in text or "test cases failed" in text.lower()
    if rc != 0 or timed_out or failed:
        raise AssignError(f"otter assign failed on {py.name}"
                          + (" (a hidden or public test fails against the solution)" if failed else "")
                          + ":\n" + text[-4000:])
    return work / "dist"


def _write_edition(src: Path, dest: Path, public_only: bool) -> None:
    """Copy an edition with the init cell that finds its own file; ``public_only`` drops the
    hidden test cases from the notebook's metadata (otter keeps every test of the key there)."""
    import nbformat

    nb = nbformat.read(src, as_version=4)
    name = nb.metadata.get("otter", {}).get("assignment_name") or src.stem
    inits = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("# Initialize Otter")]
    if len(inits) != 1:
        raise AssignError(f"{src.name}: otter wrote {len(inits)} init cells (the source needs init_cell: true)")
    inits[0].source = INIT_CELL.format(name=name)
    if public_only:
        for test in nb.metadata.get("otter", {}).get("tests", {}).values():
            for suite in test.get("suites", []):
                # otter counts a case without "hidden" as hidden
                suite["cases"] = [c for c in suite.get("cases", []) if not c.get("hidden", True)]
    nbformat.write(nb, dest)
