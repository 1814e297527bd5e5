"""Course assignments from the chapters' exercises: a student edition, solutions and a grader.

The teacher's source of a chapter's exercises is ``chapters/assignments/NN_slug.py``, a
jupytext (percent) notebook in otter-grader's assignment format (``# BEGIN QUESTION``,
``# BEGIN SOLUTION``, ``# BEGIN TESTS``, hidden tests marked ``hidden: true``). This module
wraps otter-grader's own commands:

* :func:`build` runs ``otter assign`` on each source (which executes every test, hidden ones
  included, against the solutions and fails the build if one does not pass) and lays the
  results out as ``DIR/student/`` (to hand out), ``DIR/solutions/`` and ``DIR/grader/``.
* :func:`grade` runs ``otter run`` on each submission in a scratch folder, in its own process
  group with a time limit, and returns per-question points with a note; a submission that
  crashes, loops or deletes files costs its author points, never the grader.
* :func:`book_section` is the student edition's question cells without otter's init and check
  cells: the exercise section of the book chapter ``chapters/NN_slug.py`` (a test checks they
  agree; :func:`write_book_section` rewrites it).

``python -m sslkit.assign --help`` is the command line.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = REPO / "chapters" / "assignments"
CHAPTERS = REPO / "chapters"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
DEFAULT_TIMEOUT = 180


class AssignError(RuntimeError):
    """A mistake the teacher can fix (unknown chapter, missing tool, a failing key)."""


def _need_otter() -> None:
    try:
        import otter  # noqa: F401
    except ImportError as err:
        raise AssignError("otter-grader is not installed: `pip install -r requirements.txt` "
                          "(or `pip install otter-grader==7.0.0`)") from err


_IMPORTS_SSLKIT: set[str] = set()   # interpreters whose probe passed (grade may call build)


def _need_importable_sslkit() -> None:
    """otter runs each chapter in a fresh kernel in a scratch folder, where only an installed
    sslkit can be imported: without one every key that calls ``sk`` would fail as if the
    solution were wrong. A passing probe (1.5 s: it imports torch) is not repeated."""
    if sys.executable in _IMPORTS_SSLKIT:
        return
    with tempfile.TemporaryDirectory(prefix="sslkit-import-") as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        probe = subprocess.run([sys.executable, "-c", "import sslkit"], cwd=tmp, env=env,
                               capture_output=True, text=True)
    if probe.returncode != 0:
        repo = Path(__file__).resolve().parents[2]
        raise AssignError("sslkit cannot be imported from outside the repository by this Python "
                          f"({sys.executable}), so the chapters' kernels could not run: install it "
                          f"with `pip install -e {repo}` (or `pip install -r requirements.txt` in "
                          "the repository) and rerun")
    _IMPORTS_SSLKIT.add(sys.executable)


def sources(chapters: list[str] | None = None, folder: Path | None = None) -> list[Path]:
    """The teacher sources ``NN_slug.py``, all or those whose number is in ``chapters``."""
    folder = Path(folder or SOURCES)
    found = sorted(folder.glob("[0-9][0-9]_*.py"))
    if not found:
        raise AssignError(f"no assignment sources (NN_slug.py) in {folder}: run from a clone of the book")
    if not chapters:
        return found
    wanted = [str(c).zfill(2) for c in chapters]
    have = {p.name[:2]: p for p in found}
    missing = [c for c in wanted if c not in have]
    if missing:
        raise AssignError(f"no assignment for chapter(s) {', '.join(missing)}; "
                          f"available: {', '.join(sorted(have))}")
    return [have[c] for c in wanted]


# --- the teacher source as cells --------------------------------------------------------

_BOUNDARY = re.compile(r"^#\s+(begin|end)\s+(question|solution|tests|prompt)\s*$", re.I)


def _boundary(cell) -> tuple[str, str] | None:
    if cell.cell_type != "raw":
        return None
    first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
    m = _BOUNDARY.match(first.strip())
    return (m.group(1).lower(), m.group(2).lower()) if m else None


def read_source(py: Path):
    """The teacher source as an nbformat notebook (with a kernelspec, as otter needs)."""
    import jupytext

    nb = jupytext.read(py)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata.pop("jupytext", None)
    return nb


def book_section(py: Path) -> list[tuple[str, str]]:
    """(cell_type, source) of the student edition's cells, without otter's init/check cells.

    Raw cells (config and block boundaries) and test cells are dropped; cells of a solution
    block have their solutions replaced by ``...`` with otter's own function.
    """
    from otter.assign.solutions import replace_solutions

    nb = read_source(py)
    out, block = [], []
    for cell in nb.cells:
        b = _boundary(cell)
        if b:
            kind, what = b
            if kind == "begin":
                block.append(what)
            elif block and block[-1] == what:
                block.pop()
            continue
        if cell.cell_type == "raw":
            continue  # the ASSIGNMENT CONFIG cell
        if block and block[-1] == "tests":
            continue
        src = cell.source
        if block and block[-1] == "solution" and cell.cell_type == "code":
            src = "\n".join(replace_solutions(src.split("\n"), "python"))
        elif block and block[-1] == "solution":
            continue  # markdown solutions are dropped in the student edition
        out.append((cell.cell_type, src.strip()))
    return out


def chapter_for(py: Path) -> Path:
    """The book chapter ``chapters/NN_slug.py`` of a teacher source."""
    book = py.parent.parent / py.name
    if not book.exists():
        raise AssignError(f"{py.name} has no chapter {book} beside the assignments folder")
    return book


def chapter_section(book_py: Path) -> list[tuple[str, str]]:
    """(cell_type, source) of a chapter's cells from its '## Exercises' markdown cell on."""
    import jupytext

    cells = jupytext.read(book_py).cells
    for i, c in enumerate(cells):
        if c.cell_type == "markdown" and c.source.lstrip().startswith("## Exercises"):
            return [(c.cell_type, c.source.strip()) for c in cells[i:]]
    return []


def write_book_section(py: Path) -> Path:
    """Replace the exercise section of the chapter of ``py`` (from its '## Exercises' cell to
    the end; appended if absent) with :func:`book_section`. Re-sync and re-execute after."""
    import jupytext
    import nbformat

    book = chapter_for(py)
    text = book.read_text()
    marker = re.search(r"^# %% \[markdown\]\n# ## Exercises\b", text, re.M)
    head = text[:marker.start()] if marker else text.rstrip("\n") + "\n\n"
    nb = nbformat.v4.new_notebook()
    for kind, src in book_section(py):
        nb.cells.append(nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src))
    body = jupytext.writes(nb, fmt="py:percent")
    body = body[body.index("# %%"):]  # drop jupytext's header
    book.write_text(head + body)
    return book


# --- build ---------------------------------------------------------------------------------

def _run(cmd, cwd, timeout, env=None):
    """Run ``cmd`` in its own process group; on timeout kill the group (kernels included)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out, False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return None, out, True


def build(out: Path, chapters: list[str] | None = None, run_tests: bool = True, folder: Path | None = None,
          log=print) -> list[Path]:
    """Write ``out/student/NN_slug.ipynb``, ``out/solutions/NN_slug.ipynb`` and
    ``out/grader/NN_slug.zip`` for each chapter. With ``run_tests`` (the default) otter runs
    every test against the solutions and a failing key stops the build."""
    _need_otter()
    _need_importable_sslkit()
    out = Path(out)
    srcs = sources(chapters, folder)
    for sub in ("student", "solutions", "grader"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    made = []
    with tempfile.TemporaryDirectory(prefix="sslkit-assign-") as tmp:
        for py in srcs:
            import nbformat

            work = Path(tmp) / py.stem
            work.mkdir()
            master = work / f"{py.stem}.ipynb"
            nbformat.write(read_source(py), master)
            cmd = [sys.executable, "-m", "otter", "assign", "--no-pdfs", master.name, "dist"]
            if not run_tests:
                cmd.insert(4, "--no-run-tests")
            rc, text, timed_out = _run(cmd, work, timeout=600)
            failed = "Test case failed" in text or "test cases failed" in text.lower()
            if rc != 0 or timed_out or failed:
                raise AssignError(f"otter assign failed on {py.name}"
                                  + (" (a hidden or public test fails against the solution)" if failed else "")
                                  + ":\n" + text[-4000:])
            dist = work / "dist"
            shutil.copy(dist / "student" / master.name, out / "student" / master.name)
            shutil.copy(dist / "autograder" / master.name, out / "solutions" / master.name)
            zips = sorted((dist / "autograder").glob("*.zip"))
            shutil.copy(zips[-1], out / "grader" / f"{py.stem}.zip")
            made.append(out / "student" / master.name)
            if log:
                log(f"{py.stem}: student/{master.name}, solutions/{master.name}, grader/{py.stem}.zip"
                    + (" (every test passes against the solutions)" if run_tests else ""))
    return made


# --- grade ---------------------------------------------------------------------------------

@dataclass
class Result:
    submission: str
    questions: dict = field(default_factory=dict)  # name -> {"points", "max", "note"}

    @property
    def total(self) -> float:
        return round(sum(q["points"] for q in self.questions.values()), 4)

    @property
    def max(self) -> float:
        return round(sum(q["max"] for q in self.questions.values()), 4)

    def as_dict(self) -> dict:
        return {"submission": self.submission, "questions": self.questions, "total": self.total, "max": self.max}


def question_points(zip_path: Path) -> dict[str, float]:
    """Question name -> maximum points, read from the grader's test files."""
    points = {}
    with zipfile.ZipFile(zip_path) as z:
        for name in sorted(z.namelist()):
            if name.startswith("tests/") and name.endswith(".py"):
                test = _test_dict(z.read(name).decode())
                pts = test.get("points")
                if pts is None:
                    pts = sum(c.get("points") or 0 for s in test.get("suites", []) for c in s.get("cases", []))
                points[test.get("name", Path(name).stem)] = float(pts)
    return points


def _test_dict(text: str) -> dict:
    """The ``test = {...}`` literal of an otter test file, read without executing it."""
    import ast

    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "test" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssignError("an otter test file without `test = {...}`")


_CHECK = re.compile(r"""grader\.check\(\s*["']([^"']+)["']\s*\)""")


def answer_cells(nb) -> dict[str, list[str]]:
    """Question name -> the sources of its answer cells (tagged by otter), in order."""
    found, pending = {}, []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        m = _CHECK.search(cell.source)
        if m:
            found[m.group(1)] = pending
            pending = []
        elif "otter_answer_cell" in cell.get("metadata", {}).get("tags", []):
            pending.append(cell.source.strip())
    return found


def _assignment_name(nb, path: Path) -> str | None:
    name = nb.metadata.get("otter", {}).get("assignment_name")
    if name:
        return name
    m = re.search(r"(\d\d)", path.name)
    return m.group(1) if m else None


def _first_failure(output: str) -> str:
    """A one-line reason from otter's output of a failing question."""
    for pat in (r"AssertionError: (.+)", r"^\s*(\w+Error: .+)$", r"^\s*(\w+Exception: .+)$"):
        m = re.search(pat, output, re.M)
        if m:
            return m.group(1).strip()[:200]
    return "a test failed"


def _grade_one(sub: Path, zip_path: Path, stubs: dict[str, list[str]], timeout: float) -> Result:
    import nbformat

    maxes = question_points(zip_path)
    order = [q for q in stubs if q in maxes] + [q for q in maxes if q not in stubs]  # the notebook's order
    maxes = {q: maxes[q] for q in order}
    res = Result(str(sub), {q: {"points": 0.0, "max": m, "note": ""} for q, m in maxes.items()})
    try:
        nb = nbformat.read(sub, as_version=4)
    except Exception as err:  # not a notebook at all
        for q in res.questions.values():
            q["note"] = f"not a readable notebook ({type(err).__name__}): nothing graded"
        return res
    answers = answer_cells(nb)
    with tempfile.TemporaryDirectory(prefix="sslkit-grade-") as tmp:
        run_dir, out_dir = Path(tmp) / "run", Path(tmp) / "out"
        run_dir.mkdir()
        out_dir.mkdir()
        local = run_dir / sub.name
        shutil.copy(sub, local)
        shutil.copy(zip_path, Path(tmp) / "autograder.zip")
        env = {**os.environ, "HOME": str(run_dir), "MPLBACKEND": "Agg"}
        cmd = [sys.executable, "-m", "otter", "run", "--no-logo", "-a", str(Path(tmp) / "autograder.zip"),
               "-o", str(out_dir), local.name]
        rc, text, timed_out = _run(cmd, run_dir, timeout, env)
        results_file = out_dir / "results.json"
        if timed_out or not results_file.exists():
            why = (f"grading stopped after {timeout:g} s: the notebook did not finish (an endless loop or a "
                   f"very long computation?)" if timed_out else
                   "the grader produced no results (did the notebook delete or move files, or exit the "
                   f"kernel?): {text.strip().splitlines()[-1][:160] if text.strip() else 'no output'}")
            for q in res.questions.values():
                q["note"] = why
            return res
        data = json.loads(results_file.read_text())
    for t in data.get("tests", []):
        name = t.get("name")
        if name not in res.questions:
            continue
        q = res.questions[name]
        q["points"] = float(t.get("score") or 0.0)
        q["max"] = float(t.get("max_score") or q["max"])
        if q["points"] >= q["max"]:
            q["note"] = "all tests pass"
        elif name in stubs and answers.get(name) == stubs[name]:
            q["note"] = "not answered"
        else:
            n_fail = t.get("output", "").count("Test case failed")
            q["note"] = f"{n_fail} test(s) failed: {_first_failure(t.get('output', ''))}"
    return res


def grade(submissions: list[Path], grader: Path | None = None, timeout: float = DEFAULT_TIMEOUT,
          log=print) -> list[Result]:
    """Grade each submission with the grader of its chapter (``grader``: a ``build`` output
    folder; without it, the graders are built from the sources first, without the key run)."""
    _need_otter()
    _need_importable_sslkit()
    import nbformat

    subs = [Path(s) for s in submissions]
    for s in subs:
        if not s.exists():
            raise AssignError(f"no such submission: {s}")
    tmp = None
    if grader is None:
        names = set()
        for s in subs:
            try:
                names.add(_assignment_name(nbformat.read(s, as_version=4), s))
            except Exception:
                names.add(s.name[:2])
        avail = {p.name[:2] for p in sources()}
        wanted = sorted({n[:2] for n in names if n and n[:2] in avail})
        if not wanted:
            raise AssignError("cannot tell which chapter these notebooks belong to (no otter metadata, no NN_ "
                              "file name): pass --grader DIR from `python -m sslkit.assign build --out DIR`")
        tmp = tempfile.TemporaryDirectory(prefix="sslkit-grader-")
        grader = Path(tmp.name)
        build(grader, wanted, run_tests=False, log=None)
    grader = Path(grader)
    zips = {p.stem: p for p in (grader / "grader").glob("*.zip")}
    if not zips:
        raise AssignError(f"{grader} holds no grader/*.zip: run `python -m sslkit.assign build --out {grader}` first")
    results = []
    try:
        for s in subs:
            try:
                name = _assignment_name(nbformat.read(s, as_version=4), s)
            except Exception:
                name = s.name[:2]
            match = [z for stem, z in zips.items() if name and (stem == name or stem[:2] == name[:2])]
            if not match:
                res = Result(str(s), {})
                res.questions["(assignment)"] = {"points": 0.0, "max": 0.0,
                                                 "note": f"no grader for this notebook ({name!r}); have {sorted(zips)}"}
                results.append(res)
                continue
            zip_path = match[0]
            stub_nb = grader / "student" / f"{zip_path.stem}.ipynb"
            stubs = answer_cells(nbformat.read(stub_nb, as_version=4)) if stub_nb.exists() else {}
            res = _grade_one(s, zip_path, stubs, timeout)
            results.append(res)
            if log:
                log(format_result(res))
    finally:
        if tmp is not None:
            tmp.cleanup()
    return results


def format_result(res: Result) -> str:
    lines = [f"{res.submission}: {res.total:g} / {res.max:g}"]
    width = max((len(q) for q in res.questions), default=0)
    for name, q in res.questions.items():
        lines.append(f"  {name:<{width}}  {q['points']:g} / {q['max']:g}  {q['note']}")
    return "\n".join(lines)


def write_reports(results: list[Result], json_path: Path) -> tuple[Path, Path]:
    """The JSON list (one object per submission) and a CSV beside it (one row per submission)."""
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps([r.as_dict() for r in results], indent=2) + "\n")
    names = []
    for r in results:
        names += [q for q in r.questions if q not in names]
    csv_path = json_path.with_suffix(".csv")
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["submission", *names, "total", "max"])
        for r in results:
            w.writerow([r.submission, *[r.questions[q]["points"] if q in r.questions else "" for q in names],
                        r.total, r.max])
    return json_path, csv_path
