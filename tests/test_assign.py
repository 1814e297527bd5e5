"""Course assignments (sslkit.assign): every key is proven, the student edition leaks nothing,
and the grader gives the points a teacher expects (right, wrong, unanswered, crashing,
looping and file-deleting submissions).

Building runs otter-grader's `otter assign` (each hidden and public test against the
solutions); grading runs `otter run` on each submission in its own process group.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("otter", reason="otter-grader is in requirements.txt")

from sslkit import assign  # noqa: E402

SOURCES = assign.sources()
CHAPTERS = [p.name[:2] for p in SOURCES]


def _blocks(py: Path):
    """(kind, cell) for each cell inside a solution or tests block of a teacher source."""
    nb = assign.read_source(py)
    block, hidden_flag = [], []
    for cell in nb.cells:
        b = assign._boundary(cell)
        if b:
            block.append(b[1]) if b[0] == "begin" else block.pop()
            continue
        if block and block[-1] in ("solution", "tests"):
            yield block[-1], cell


def _solution_lines(py: Path) -> list[str]:
    lines = []
    for kind, cell in _blocks(py):
        if kind != "solution":
            continue
        inside = False
        for line in cell.source.splitlines():
            s = line.strip()
            if s.endswith("# BEGIN SOLUTION"):
                inside = True
            elif s.endswith("# END SOLUTION"):
                inside = False
            elif inside or s.endswith("# SOLUTION"):
                lines.append(s.replace("# SOLUTION", "").strip())
    return [s for s in lines if len(s) > 8]


def _hidden_test_lines(py: Path) -> list[str]:
    """Lines of the hidden tests that no public test shares (those may be shown)."""
    hidden, public = [], set()
    for kind, cell in _blocks(py):
        if kind != "tests":
            continue
        body = cell.source.split("# END TEST CONFIG", 1)[-1]
        lines = [s.strip() for s in body.splitlines() if len(s.strip()) > 12]
        if "hidden: true" in cell.source:
            hidden += lines
        else:
            public.update(lines)
    return [s for s in hidden if s not in public]


def _set_answer(nb, startswith: str, source: str):
    hits = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(startswith)]
    assert len(hits) == 1, f"no single answer cell starting with {startswith!r}"
    hits[0].source = source


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("course")
    assign.build(out, CHAPTERS, run_tests=True, log=None)  # raises if any test fails against the solutions
    return out


# --- no kernel ---------------------------------------------------------------------------

def test_every_chapter_with_an_assignment_shows_its_student_questions():
    assert SOURCES, "no chapters/assignments/NN_slug.py"
    for py in SOURCES:
        book = assign.chapter_for(py)
        assert assign.chapter_section(book) == assign.book_section(py), (
            f"the exercise section of {book.name} differs from {py.name}'s student edition: run "
            f"`python -m sslkit.assign book --chapters {py.name[:2]}`, `jupytext --sync` and re-execute")


def test_assignments_have_four_questions_two_implementations_and_hidden_tests():
    for py in SOURCES:
        text = py.read_text()
        questions = re.findall(r"^# name: (\w+)\n# points: (\d+)", text, re.M)
        assert len(questions) >= 4, f"{py.name}: fewer than four graded questions"
        implement = [m for m in re.findall(r"^def (\w+)\(", text, re.M) if not m.startswith("_")]
        assert len(implement) >= 2, f"{py.name}: fewer than two implementation tasks"
        assert _hidden_test_lines(py), f"{py.name}: no hidden tests"
        assert "sk.exercises.check" not in text


def test_unknown_chapter_is_a_clear_error():
    with pytest.raises(assign.AssignError, match="no assignment for chapter"):
        assign.sources(["42"])


def test_wrong_key_fails_the_build(tmp_path):
    """A solution that its own hidden test rejects must stop `build` (so CI proves the keys)."""
    src = tmp_path / "src"
    src.mkdir()
    py = next(p for p in SOURCES if p.name.startswith("03"))
    text = py.read_text()
    assert 'why = "c"  # SOLUTION' in text
    (src / py.name).write_text(text.replace('why = "c"  # SOLUTION', 'why = "a"  # SOLUTION'))
    with pytest.raises(assign.AssignError, match="fails against the solution"):
        assign.build(tmp_path / "out", folder=src, log=None)


def test_python_without_sslkit_is_a_clear_error_before_any_work(tmp_path, monkeypatch):
    """otter's kernels import the installed sslkit; a Python without it (here a bare venv)
    must stop build and grade with the install command, not with every key failing."""
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True)
    bare = next(p for p in (tmp_path / "bare" / "bin" / "python", tmp_path / "bare" / "Scripts" / "python.exe")
                if p.exists())
    monkeypatch.setattr(sys, "executable", str(bare))
    with pytest.raises(assign.AssignError, match=r"pip install -e"):
        assign.build(tmp_path / "out", log=None)
    assert not (tmp_path / "out").exists()
    with pytest.raises(assign.AssignError, match=r"pip install -e"):
        assign.grade([tmp_path / "03_x.ipynb"], log=None)


# --- built editions ----------------------------------------------------------------------

def test_build_layout_and_points(built):
    for py in SOURCES:
        for sub in ("student", "solutions"):
            assert (built / sub / f"{py.stem}.ipynb").exists()
        zip_path = built / "grader" / f"{py.stem}.zip"
        declared = {n: float(p) for n, p in re.findall(r"^# name: (\w+)\n# points: (\d+)", py.read_text(), re.M)}
        assert assign.question_points(zip_path) == declared


def test_student_edition_has_no_solution_and_no_hidden_test(built):
    for py in SOURCES:
        raw = (built / "student" / f"{py.stem}.ipynb").read_text()
        # compare against the strings as they appear inside the notebook's JSON
        text = "\n".join(json.dumps(c.source) for c in nbformat.reads(raw, as_version=4).cells) + json.dumps(
            nbformat.reads(raw, as_version=4).metadata)
        sol, hidden = _solution_lines(py), _hidden_test_lines(py)
        assert sol and hidden
        for line in sol:
            assert json.dumps(line)[1:-1] not in text, f"{py.name}: solution line in the student edition: {line}"
        for line in hidden:
            assert json.dumps(line)[1:-1] not in text, f"{py.name}: hidden test in the student edition: {line}"
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN TESTS", "hidden: true", "ASSIGNMENT CONFIG"):
            assert marker not in raw, f"{py.name}: {marker!r} in the student edition"
        # the solutions edition does hold them (so the check above looks at the right strings)
        full = (built / "solutions" / f"{py.stem}.ipynb").read_text()
        assert all(json.dumps(line)[1:-1] in full for line in sol)


def test_student_edition_runs_top_to_bottom_unanswered(built, tmp_path):
    from nbclient import NotebookClient

    for py in SOURCES:
        work = tmp_path / py.stem
        work.mkdir()
        path = work / f"{py.stem}.ipynb"
        shutil.copy(built / "student" / path.name, path)
        nb = nbformat.read(path, as_version=4)
        answers = assign.answer_cells(nb)
        assert set(answers) == set(assign.question_points(built / "grader" / f"{py.stem}.zip"))
        assert all(src and all("..." in s for s in src) for src in answers.values()), "an answer cell is not a stub"
        NotebookClient(nb, timeout=300, resources={"metadata": {"path": str(work)}}).execute()
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{path.name}: {errors[0].get('ename')}: {errors[0].get('evalue')}"
        checks = [c for c in nb.cells if "grader.check(" in c.source]
        assert len(checks) == len(answers) and all(c.get("outputs") for c in checks)


def _submission(built, tmp_path, stem, name, answers: dict[str, str]) -> Path:
    nb = nbformat.read(built / "student" / f"{stem}.ipynb", as_version=4)
    for start, src in answers.items():
        _set_answer(nb, start, src)
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


PLAIN_SINKHORN = '''def sinkhorn_log(log_p, lam, r=None, c=None, iters=1000):
    K = torch.exp(lam * log_p.double())   # plain scaling: right for small lambda only
    n, k = K.shape
    r = torch.full((n,), 1 / n, dtype=torch.float64) if r is None else r.double()
    c = torch.full((k,), 1 / k, dtype=torch.float64) if c is None else c.double()
    a = torch.ones(n, dtype=torch.float64)
    for _ in range(iters):
        b = c / (K.T @ a)
        a = r / (K @ b)
    return (a[:, None] * K * b[None, :]).log()'''

NAIVE_CODES = '''def codes_with_queue(scores, queue_scores, epsilon=0.05, iters=3):
    q = torch.exp(scores.float() / epsilon)   # ignores the queue, no shift before exp
    q = q / q.sum()
    B, K = q.shape
    for _ in range(iters):
        q = q / q.sum(0, keepdim=True) / K
        q = q / q.sum(1, keepdim=True) / B
    return q * B'''


def test_grading_right_wrong_unanswered_and_hostile(built, tmp_path):
    s03 = next(p.stem for p in SOURCES if p.name.startswith("03"))
    s05 = next(p.stem for p in SOURCES if p.name.startswith("05"))
    subs = {
        "key03": built / "solutions" / f"{s03}.ipynb",
        "key05": built / "solutions" / f"{s05}.ipynb",
        "blank03": built / "student" / f"{s03}.ipynb",
        # one right answer (q11, derived by hand), one wrong implementation, one wrong letter
        "wrong03": _submission(built, tmp_path, s03, f"{s03}_wrong.ipynb", {
            "def sinkhorn_log": PLAIN_SINKHORN, "q11 =": "q11 = 0.5 * 0.64 / 0.68", "why =": 'why = "b"'}),
        "wrong05": _submission(built, tmp_path, s05, f"{s05}_wrong.ipynb", {
            "def codes_with_queue": NAIVE_CODES, "queue_length =": "queue_length = 3000"}),
        # crashes in one answer, deletes every file it can see in another
        "hostile03": _submission(built, tmp_path, s03, f"{s03}_hostile.ipynb", {
            "def sela_objective": "raise RuntimeError('student bug')",
            "q11 =": "import os\nfor f in os.listdir('.'):\n    os.remove(f) if os.path.isfile(f) else None\nq11 = 0.4706"}),
    }
    results = assign.grade(list(subs.values()), built, log=None)
    by = dict(zip(subs, results))
    for key in ("key03", "key05"):
        r = by[key]
        assert r.total == r.max > 0 and all(q["points"] == q["max"] for q in r.questions.values()), r.questions
    blank = by["blank03"]
    assert blank.total == 0 and blank.max == by["key03"].max
    assert all(q["note"] == "not answered" for q in blank.questions.values())
    w = by["wrong03"].questions
    assert 0 < by["wrong03"].total < by["key03"].total
    assert 0 < w["sinkhorn_log"]["points"] < w["sinkhorn_log"]["max"] and "lambda = 500" in w["sinkhorn_log"]["note"]
    assert w["two_by_two"]["points"] == w["two_by_two"]["max"]
    assert w["why_log_domain"]["points"] == 0 and "failed" in w["why_log_domain"]["note"]
    assert w["sela_objective"]["points"] == 0 and w["sela_objective"]["note"] == "not answered"
    w5 = by["wrong05"].questions
    assert w5["codes_with_queue"]["points"] < w5["codes_with_queue"]["max"]
    assert w5["smallest_queue"]["points"] == 0 and w5["swav_loss"]["note"] == "not answered"
    h = by["hostile03"].questions
    assert h["sela_objective"]["points"] == 0 and "failed" in h["sela_objective"]["note"]
    assert h["two_by_two"]["points"] == h["two_by_two"]["max"]
    assert (built / "grader" / f"{s03}.zip").exists() and subs["wrong03"].exists(), "grading deleted the teacher's files"

    j, c = assign.write_reports(results, tmp_path / "grades.json")
    data = json.loads(j.read_text())
    assert [d["submission"] for d in data] == [str(p) for p in subs.values()]
    assert set(data[0]) == {"submission", "questions", "total", "max"}
    assert set(next(iter(data[0]["questions"].values()))) == {"points", "max", "note"}
    rows = c.read_text().splitlines()
    assert rows[0].startswith("submission,") and rows[0].endswith(",total,max") and len(rows) == 1 + len(subs)


def test_looping_submission_times_out_with_a_note(built, tmp_path):
    s05 = next(p.stem for p in SOURCES if p.name.startswith("05"))
    loop = _submission(built, tmp_path, s05, f"{s05}_loop.ipynb", {"collapse_value =": "while True:\n    pass"})
    [r] = assign.grade([loop], built, timeout=25, log=None)
    assert r.total == 0 and r.max > 0
    assert all("grading stopped after 25 s" in q["note"] for q in r.questions.values())


def test_cli_build_and_grade(built, tmp_path, capsys):
    from sslkit.assign.__main__ import main

    s05 = next(p.stem for p in SOURCES if p.name.startswith("05"))
    assert main(["grade", str(built / "solutions" / f"{s05}.ipynb"), "--grader", str(built),
                 "--json", str(tmp_path / "g.json")]) == 0
    out = capsys.readouterr().out
    assert "swav_loss" in out and (tmp_path / "g.csv").exists()
    assert main(["build", "--out", str(tmp_path / "x"), "--chapters", "99"]) == 2
    assert "no assignment for chapter" in capsys.readouterr().err
