"""The teacher source of a chapter's exercises, ``NN_slug.py``: a jupytext (percent) notebook in
otter-grader's assignment format, read as cells and as questions, and checked before a build.

A question is the cells between ``# BEGIN QUESTION`` (a raw cell with its ``name`` and
``points``) and ``# END QUESTION``: its prompt (the first Markdown cell), its solution block
and its tests block (one code cell per test case, ``hidden: true`` in a test's config for a
hidden one). The prompt states the points as ``[N points]``; :func:`check_sources` fails when
that differs from the configuration, so the two cannot drift.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .runtime import SOURCES, AssignError

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}

_BOUNDARY = re.compile(r"^#\s+(begin|end)\s+(question|solution|tests|prompt)\s*$", re.I)
_TEST_CONFIG = re.compile(r'^\s*"""\s*#\s*BEGIN TEST CONFIG\s*\n(.*?)"""\s*#\s*END TEST CONFIG', re.S)
_PROMPT_POINTS = re.compile(r"\[(\d+(?:\.\d+)?) points?\]")


def sources(chapters: list[str] | None = None, folder: Path | None = None) -> list[Path]:
    """The teacher sources ``NN_slug.py`` in ``folder`` (default: the book's
    ``chapters/assignments/``), all or those whose number is in ``chapters``."""
    folder = Path(folder or SOURCES)
    if not folder.is_dir():
        raise AssignError(f"no such folder of assignment sources: {folder}")
    found = sorted(folder.glob("[0-9][0-9]_*.py"))
    if not found:
        raise AssignError(f"no assignment sources (NN_slug.py) in {folder}: copy the book's "
                          "chapters/assignments/ there, or pass the folder that holds them")
    if not chapters:
        return found
    wanted = [str(c).zfill(2) for c in chapters]
    have = {p.name[:2]: p for p in found}
    missing = [c for c in wanted if c not in have]
    if missing:
        raise AssignError(f"no assignment for chapter(s) {', '.join(missing)} in {folder}; "
                          f"available: {', '.join(sorted(have))}")
    return [have[c] for c in wanted]


def read_source(py: Path):
    """The teacher source as an nbformat notebook (with a kernelspec, as otter needs)."""
    import jupytext

    nb = jupytext.read(py)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata.pop("jupytext", None)
    return nb


def boundary(cell) -> tuple[str, str] | None:
    """("begin" | "end", "question" | "solution" | "tests" | "prompt") for a block boundary cell."""
    if cell.cell_type != "raw":
        return None
    first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
    m = _BOUNDARY.match(first.strip())
    return (m.group(1).lower(), m.group(2).lower()) if m else None


@dataclass
class TestCell:
    source: str
    hidden: bool
    points: float | None


@dataclass
class Question:
    name: str
    points: float | list | dict | None
    prompt: str = ""
    solution: str = ""                                 # the solution block's code
    tests: list[TestCell] = field(default_factory=list)

    def total(self) -> float | None:
        """The question's points as otter counts them (a number, a list per test, or ``each``)."""
        if isinstance(self.points, dict):
            return float(self.points.get("each", 1)) * len(self.tests)
        if isinstance(self.points, list):
            return float(sum(self.points))
        return None if self.points is None else float(self.points)


def _test_cell(source: str) -> TestCell:
    import yaml

    m = _TEST_CONFIG.match(source)
    config = (yaml.safe_load(m.group(1)) or {}) if m else {}
    return TestCell(source, bool(config.get("hidden", False)), config.get("points"))


def questions(py: Path) -> list[Question]:
    """The questions of a teacher source, in order, with their prompt and test cells."""
    import yaml

    out, block = [], []
    for cell in read_source(py).cells:
        b = boundary(cell)
        if b:
            kind, what = b
            if kind == "begin":
                block.append(what)
                if what == "question":
                    config = yaml.safe_load(cell.source.split("\n", 1)[1] if "\n" in cell.source else "") or {}
                    out.append(Question(str(config.get("name", "")), config.get("points")))
            elif block and block[-1] == what:
                block.pop()
            continue
        if "question" not in block:
            continue
        q = out[-1]
        if block[-1] == "tests" and cell.cell_type == "code":
            q.tests.append(_test_cell(cell.source))
        elif block[-1] == "solution" and cell.cell_type == "code":
            q.solution += cell.source + "\n"
        elif block[-1] == "question" and cell.cell_type == "markdown" and not q.prompt:
            q.prompt = cell.source
    return out


def source_problems(py: Path) -> list[str]:
    """What is wrong with a teacher source's questions, as sentences (empty: nothing)."""
    problems = []
    for q in questions(py):
        where = f"{py.name}, question {q.name or '(unnamed)'}"
        total = q.total()
        if not q.name or total is None:
            problems.append(f"{where}: the BEGIN QUESTION cell needs a name and points")
            continue
        if not q.tests:
            problems.append(f"{where}: no tests")
        stated = [float(p) for p in _PROMPT_POINTS.findall(q.prompt)]
        if len(stated) != 1:
            problems.append(f"{where}: its prompt must state the points once, as [{total:g} points]")
        elif stated[0] != total:
            problems.append(f"{where}: points: {total:g} in the configuration but [{stated[0]:g} points] in "
                            "the prompt; make them agree")
        fixed = [t.points for t in q.tests if t.points is not None]
        if isinstance(q.points, (int, float)) and fixed:
            if sum(fixed) > total + 1e-9 or (len(fixed) == len(q.tests) and abs(sum(fixed) - total) > 1e-9):
                problems.append(f"{where}: its tests' points add up to {sum(fixed):g}, the question has {total:g}")
    return problems


def check_sources(paths: list[Path]) -> None:
    """Raise :class:`AssignError` listing every problem of ``paths`` (before any build work)."""
    problems = [p for py in paths for p in source_problems(py)]
    if len(problems) == 1:
        raise AssignError(problems[0])
    if problems:
        raise AssignError("the assignment sources need fixing before a build:\n  " + "\n  ".join(problems))
