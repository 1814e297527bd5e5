"""Score an answer against a question's tests, hidden ones included, in this process (no kernel,
no notebook): how a test suite (or a teacher adding a question) checks that typical wrong
answers lose points and the key keeps them all, in well under a second each.

The answer runs after the key's own cells (its imports and every other answer), then the
question's test cases from the grader zip run through otter's own test classes, so the points
are those ``grade`` would give.
"""

from __future__ import annotations

import zipfile
from functools import lru_cache
from pathlib import Path

from .doctests import installed
from .runtime import AssignError


@lru_cache(maxsize=16)
def _key_namespace(solutions: str) -> dict:
    import nbformat

    env: dict = {"__name__": "__main__"}
    for cell in nbformat.read(solutions, as_version=4).cells:
        if cell.cell_type == "code" and "grader." not in cell.source and "otter" not in cell.source:
            exec(compile(cell.source, f"<{Path(solutions).name}>", "exec"), env)
    return env


def _test_file(grader_zip: Path, question: str):
    from otter.test_files.ok_test import OKTestFile

    from .grade import _test_dict

    with zipfile.ZipFile(grader_zip) as z:
        try:
            text = z.read(f"tests/{question}.py").decode()
        except KeyError as err:
            raise AssignError(f"{grader_zip.name} has no question {question!r}") from err
    return OKTestFile.from_spec(_test_dict(text), path=f"tests/{question}.py")


def score_answer(course: Path, assignment: str, question: str, source: str | None = None) -> dict:
    """Points of ``source`` (code defining the answer, e.g. a function) on ``question`` of
    ``assignment`` in the ``build --out`` folder ``course``; ``source=None`` scores the key.
    Returns ``{"points", "max", "failed": [(hidden, description), ...]}``."""
    from .results import describe_failure

    course = Path(course)
    env = dict(_key_namespace(str(course / "solutions" / f"{assignment}.ipynb")))
    if source is not None:
        exec(compile(source, f"<answer to {question}>", "exec"), env)
    tf = _test_file(course / "grader" / f"{assignment}.zip", question)
    with installed():  # as in grading: what the answer prints does not fail a test
        tf.run(env)
    return {"points": float(tf.score), "max": float(tf.possible),
            "failed": [(r.test_case.hidden, describe_failure(r.message or "")) for r in tf.test_case_results
                       if not r.passed]}
