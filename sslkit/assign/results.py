"""A submission's grade: per-question points with a note, or the reason it could not be graded.

:func:`otter_outcome` turns otter's ``GradingResults`` into plain data that holds no hidden test
code or input: per test case whether it passed, its points and a one-line description (the
test's own assertion message, or the error it raised), and the first error the notebook
raised. :func:`result_from_outcome` makes a :class:`Result` of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

GRADED = "graded"
INVALID = "invalid notebook"
NO_GRADER = "no grader"
TIMED_OUT = "timed out"
FAILED = "grader failed"


@dataclass
class Result:
    submission: str
    assignment: str | None = None
    student_id: str = ""
    status: str = GRADED
    reason: str = ""                                   # why it was not graded (one line)
    questions: dict = field(default_factory=dict)      # name -> {"points", "max", "note", "failed"}
    first_error: str | None = None                     # the first error the notebook raised

    @property
    def graded(self) -> bool:
        return self.status == GRADED

    @property
    def chapter(self) -> str | None:
        return self.assignment[:2] if self.assignment else None

    @property
    def total(self) -> float:
        return round(sum(q["points"] for q in self.questions.values()), 4)

    @property
    def max(self) -> float | None:
        """The assignment's maximum, None when unknown (never 0)."""
        m = round(sum(q["max"] for q in self.questions.values()), 4)
        return m or None

    @property
    def percentage(self) -> float | None:
        return round(100 * self.total / self.max, 1) if self.graded and self.max else None

    def as_dict(self) -> dict:
        return {"submission": self.submission, "student_id": self.student_id, "assignment": self.assignment,
                "chapter": self.chapter, "status": self.status, "reason": self.reason,
                "total": self.total if self.graded else None, "max": self.max, "percentage": self.percentage,
                "first_error": self.first_error, "questions": self.questions}


def describe_failure(message: str) -> str:
    """One line for a failed otter test case: its first failing example's exception line (the
    test's assertion message), never the test's code or inputs."""
    blocks = message.split("Failed example:")[1:]
    for block in blocks:
        if "Exception raised:" in block:
            traceback = []
            for line in block.split("Exception raised:", 1)[1].splitlines()[1:]:
                if line.strip() and not line.startswith(" "):
                    break  # doctest's next report line: the (indented) traceback is over
                traceback.append(line.strip())
            lines = [t for t in traceback if t]
            return lines[-1][:240] if lines else "an error"
        if "Got:" in block:
            return "the output differs from the one the test expects"
    return "the test failed"


def first_error(executed, original) -> str | None:
    """The first error output of an executed notebook, with the cell of ``original`` it came from."""
    sources = [c.source.strip() for c in original.cells] if original is not None else []
    for cell in getattr(executed, "cells", []):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "error":
                src = cell.source.strip()
                where = f"cell {sources.index(src) + 1}" if src in sources else "a grading cell"
                head = src.splitlines()[0][:60] if src else ""
                return f"{out.get('ename')}: {str(out.get('evalue'))[:200]} (in {where}, which begins: {head})"
    return None


def otter_outcome(results, original=None) -> dict:
    """Plain data from otter's ``GradingResults`` (see the module's docstring)."""
    tests = {}
    for name, tf in results.results.items():
        cases = []
        for i, tcr in enumerate(tf.test_case_results, 1):
            tc = tcr.test_case
            cases.append({"n": i, "hidden": bool(tc.hidden), "points": float(tc.points or 0),
                          "passed": bool(tcr.passed),
                          "description": "" if tcr.passed else describe_failure(tcr.message or "")})
        tests[name] = {"score": float(tf.score), "possible": float(tf.possible), "cases": cases}
    error = getattr(results, "_catastrophic_error", None)
    return {"tests": tests, "error": None if error is None else f"{type(error).__name__}: {error}"[:300],
            "first_error": first_error(getattr(results, "notebook", None), original)}


def not_graded(res: Result, status: str, reason: str) -> Result:
    """Mark ``res`` as not graded (``status``, one of the constants above) for ``reason``."""
    res.status, res.reason = status, reason
    for q in res.questions.values():
        q["points"], q["note"] = 0.0, f"not graded: {reason}"
    return res


def _stub_intact(stubs: list[str], code_cells: set[str]) -> bool:
    return bool(stubs) and all(s in code_cells for s in stubs)


def result_from_outcome(res: Result, outcome: dict, stubs: dict[str, list[str]], code_cells: set[str]) -> Result:
    """Fill ``res`` (its questions' maxima set from the grader) from a graded outcome."""
    res.first_error = outcome.get("first_error")
    for name, q in res.questions.items():
        t = outcome["tests"].get(name)
        if t is None:
            q["note"] = "no result: the tests of this question did not run (did the notebook delete files?)"
            continue
        q["points"], q["max"] = round(t["score"], 4), round(t["possible"], 4) or q["max"]
        failed = [c for c in t["cases"] if not c["passed"]]
        q["failed"] = [f"{'hidden' if c['hidden'] else 'public'} test {c['n']}: {c['description']}" for c in failed]
        if not failed:
            q["note"] = "all tests pass"
        elif q["points"] == 0 and _stub_intact(stubs.get(name, []), code_cells):
            q["note"] = "not answered"
        else:
            q["note"] = f"{len(failed)} of {len(t['cases'])} test(s) failed: {failed[0]['description']}"
    return res


def pts(x: float) -> str:
    """Points as people write them, at most two decimals: 4, 0.67, 1.33."""
    return f"{round(x, 2):g}"


def format_result(res: Result) -> str:
    """The terminal lines of one submission."""
    who = ", ".join(x for x in (res.assignment, f"id {res.student_id}" if res.student_id else "") if x)
    if not res.graded:
        return f"{res.submission} ({who}): NOT GRADED ({res.status}): {res.reason}"
    lines = [f"{res.submission} ({who}): {pts(res.total)} / {pts(res.max)} ({res.percentage:g} %)"]
    width = max((len(q) for q in res.questions), default=0)
    for name, q in res.questions.items():
        lines.append(f"  {name:<{width}}  {pts(q['points'])} / {pts(q['max'])}  {q['note']}")
    if res.first_error:
        lines.append(f"  first error in the notebook: {res.first_error}")
    return "\n".join(lines)


def answer_stubs(nb) -> dict[str, list[str]]:
    """Question name -> the sources of its answer cells (tagged by otter) in a student edition,
    in order: the cells before each question's ``grader.check`` cell."""
    found, pending = {}, []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        m = re.search(r"""grader\.check\(\s*["']([^"']+)["']\s*\)""", cell.source)
        if m:
            found[m.group(1)] = pending
            pending = []
        elif "otter_answer_cell" in cell.get("metadata", {}).get("tags", []):
            pending.append(cell.source.strip())
    return found
