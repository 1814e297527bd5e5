"""``grade``: every submission gets a :class:`~sslkit.assign.results.Result`, graded or with the
reason it could not be (an invalid notebook, no grader for its assignment, a time-out, a
grader failure). Nothing is dropped.

Each submission is graded by :mod:`sslkit.assign.runner` (otter's ``otter run``) in a scratch
folder, in its own process group, with a time limit; ``jobs`` of them at a time. With
``container`` each one runs in otter's Docker container instead (:mod:`sslkit.assign.container`).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .build import build
from .ids import check_unique
from .plan import Planned, plan
from .results import (FAILED, INVALID, NO_GRADER, TIMED_OUT, Result, answer_stubs, format_result, not_graded,
                      result_from_outcome)
from .runtime import DEFAULT_TIMEOUT, AssignError, need_importable_sslkit, need_otter, run_group
from .source import sources


def question_points(zip_path: Path) -> dict[str, float]:
    """Question name -> maximum points, read from the grader's test files."""
    points = {}
    with zipfile.ZipFile(zip_path) as z:
        for name in sorted(z.namelist()):
            if name.startswith("tests/") and name.endswith(".py"):
                test = _test_dict(z.read(name).decode())
                pts = test.get("points")
                if pts is None or isinstance(pts, (list, dict)):
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


def grader_zips(folder: Path) -> dict[str, Path]:
    """Assignment name -> grader zip of a ``build --out`` folder."""
    zips = {p.stem: p for p in sorted((Path(folder) / "grader").glob("*.zip"))}
    if not zips:
        raise AssignError(f"{folder} holds no grader/*.zip: run `python -m sslkit.assign build --out {folder}` first")
    return zips


def _new_result(p: Planned, sid: str, zips: dict[str, Path], stubs: dict) -> Result:
    res = Result(str(p.path), p.assignment, sid)
    if p.assignment in zips:
        maxes = question_points(zips[p.assignment])
        shown = [q for q in stubs.get(p.assignment, {}) if q in maxes]  # the notebook's order
        order = shown + sorted(set(maxes) - set(shown))
        res.questions = {q: {"points": 0.0, "max": maxes[q], "note": "", "failed": []} for q in order}
    return res


def _code_cells(nb) -> set[str]:
    return {c.source.strip() for c in nb.cells if c.cell_type == "code"}


def grade_local(res: Result, p: Planned, zip_path: Path, stubs: dict, timeout: float) -> Result:
    """Grade one submission with :mod:`sslkit.assign.runner` in a scratch folder."""
    with tempfile.TemporaryDirectory(prefix="sslkit-grade-") as tmp:
        run_dir, out = Path(tmp) / "run", Path(tmp) / "outcome.json"
        run_dir.mkdir()
        shutil.copy(p.path, run_dir / p.path.name)
        env = {**os.environ, "HOME": str(run_dir), "MPLBACKEND": "Agg"}
        cmd = [sys.executable, "-m", "sslkit.assign.runner", p.path.name, str(Path(zip_path).resolve()), str(out)]
        rc, text, timed_out = run_group(cmd, run_dir, timeout, env)
        if timed_out:
            return not_graded(res, TIMED_OUT, f"grading stopped after {timeout:g} s: the notebook did not finish "
                                              "(an endless loop or a very long computation?)")
        if rc != 0 or not out.exists():
            last = text.strip().splitlines()[-1][:200] if text.strip() else "no output"
            return not_graded(res, FAILED, "the grader produced no results (did the notebook exit its kernel "
                                           f"or delete files?): {last}")
        outcome = json.loads(out.read_text())
    if outcome.get("error"):
        return not_graded(res, FAILED, f"otter could not grade it: {outcome['error']}")
    return result_from_outcome(res, outcome, stubs, _code_cells(p.nb))


def grade(submissions: list[Path], grader: Path | None = None, timeout: float = DEFAULT_TIMEOUT, *,
          source: Path | None = None, jobs: int = 1, ids: dict | None = None, container=None,
          log=print) -> list[Result]:
    """Grade each submission with the grader of its assignment: ``grader`` is a ``build --out``
    folder; without it the graders are built first (without the key run) from the sources in
    ``source`` (default: the book's). ``ids`` maps a path to its student id (default: the file
    name's stem); ``container`` (a :class:`~sslkit.assign.container.Containers`) grades in Docker.
    Returns one result per submission, in order. Raises AssignError before any grading for a
    mistake in the arguments."""
    need_otter()
    subs = [Path(s) for s in submissions]
    missing = [str(s) for s in subs if not s.is_file()]
    if missing:
        raise AssignError(f"no such submission: {', '.join(missing[:5])}")
    if jobs < 1 or timeout <= 0:
        raise AssignError("--jobs must be at least 1 and --timeout positive")
    if grader is not None and source is not None:
        raise AssignError("give --grader (graders already built) or --source (build them now), not both")
    grader_arg = grader
    zips = grader_zips(grader) if grader is not None else {}
    known = sorted(zips) if grader is not None else [p.stem for p in sources(folder=source)]
    planned = plan(subs, known)
    ids = ids or {p: p.stem for p in subs}
    check_unique([(p.path, ids[p.path], p.assignment) for p in planned])
    if container is not None:
        container.check()
    else:
        need_importable_sslkit()
    with tempfile.TemporaryDirectory(prefix="sslkit-grader-") as tmp:
        if grader is None:
            wanted = sorted({p.assignment[:2] for p in planned if p.assignment in known})
            grader = Path(tmp)
            if wanted:
                build(grader, wanted, run_tests=False, folder=source, log=None)
                zips = grader_zips(grader)
        hint = (f"build it: `python -m sslkit.assign build --out {grader_arg} --chapters NN`" if grader_arg else
                f"there is no source for it in {source or 'the book'}")
        return _grade_all(planned, ids, Path(grader), zips, hint, timeout, jobs, container, log)


def _grade_all(planned, ids, grader, zips, hint, timeout, jobs, container, log) -> list[Result]:
    import nbformat

    stubs = {a: answer_stubs(nbformat.read(grader / "student" / f"{a}.ipynb", as_version=4))
             for a in zips if (grader / "student" / f"{a}.ipynb").exists()}
    results, todo = [], []
    for p in planned:
        res = _new_result(p, ids[p.path], zips, stubs)
        results.append(res)
        if p.problem:
            not_graded(res, INVALID, p.problem)
        elif p.assignment not in zips:
            not_graded(res, NO_GRADER, f"no grader for {p.assignment} (there are graders for "
                                       f"{', '.join(sorted(zips)) or 'no assignment'}): "
                                       + hint.replace("NN", p.assignment[:2]))
        else:
            todo.append((res, p))
    lock = threading.Lock()

    def one(item):
        res, p = item
        stub = stubs.get(p.assignment, {})
        try:
            if container is not None:
                container.grade(res, p, zips[p.assignment], stub, timeout)
            else:
                grade_local(res, p, zips[p.assignment], stub, timeout)
        except Exception as err:  # whatever goes wrong, the submission keeps its row, with the reason
            not_graded(res, FAILED, f"the grader failed ({type(err).__name__}: {str(err)[:200]})")
        if log:
            with lock:
                log(format_result(res))

    if container is not None:
        container.prepare({p.assignment: zips[p.assignment] for _, p in todo})
    if log:
        for res in results:
            if not res.graded:
                log(format_result(res))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(one, todo))
    return results
