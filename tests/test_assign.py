"""Course assignments (sslkit.assign): every key is proven, the student edition leaks nothing and
works under any file name, typical wrong answers lose at least half of a task's points, and
grading accounts for every submission (right, wrong, unanswered, crashing, file-deleting,
looping, unreadable, of an assignment without a grader) with CSVs and feedback a course can use.

Building runs otter-grader's `otter assign` (each hidden and public test against the
solutions); grading runs otter on each submission in its own process group. The wrong answers
(tests/assign_mistakes.py) are scored in-process with otter's own test classes; one of them is
also graded by otter for real, and both must agree.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import zipfile
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("otter", reason="otter-grader is in requirements.txt")

from assign_mistakes import MISTAKES  # noqa: E402

from sslkit import assign  # noqa: E402
from sslkit.assign.__main__ import main  # noqa: E402

SOURCES = assign.sources()
CHAPTERS = [p.name[:2] for p in SOURCES]
STEM = {p.name[:2]: p.stem for p in SOURCES}


def _blocks(py: Path):
    """(kind, cell) for each cell inside a solution or tests block of a teacher source."""
    nb = assign.read_source(py)
    block = []
    for cell in nb.cells:
        b = assign.boundary(cell)
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


def _cell_texts(path: Path) -> str:
    """Every cell's source and the metadata of a notebook, as the strings appear in its JSON."""
    nb = nbformat.read(path, as_version=4)
    return "\n".join(json.dumps(c.source) for c in nb.cells) + json.dumps(nb.metadata)


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
        assert re.search(r"^# check_all_cell: true$", text, re.M) and re.search(r"^# export_cell:$", text, re.M), \
            f"{py.name}: the student edition needs otter's check-all and export cells"


def test_every_implementation_task_has_typical_wrong_answers():
    for py in SOURCES:
        tasks = {q.name for q in assign.questions(py) if q.solution.lstrip().startswith("def ")}
        have = {q for q, wrong in MISTAKES.get(py.name[:2], {}).items() if len(wrong) >= 3}
        assert tasks == have, (f"{py.name}: implementation tasks {sorted(tasks)}, three or more wrong answers "
                               f"for {sorted(have)}")


def test_prompts_refer_to_nothing_the_student_edition_lacks():
    """The edition holds only the exercises: no 'section 2', 'the chapter's rule', README."""
    lacking = re.compile(r"\bsection \d|\bthe chapter's\b|README|\bre-?run the chapter\b|\bsee above\b", re.I)
    for py in SOURCES:
        for kind, src in assign.book_section(py):
            m = lacking.search(src) if kind == "markdown" else None
            assert m is None, f"{py.name}: {m.group(0)!r} in {src[:80]!r}"


def test_points_in_a_prompt_must_match_the_configuration(tmp_path):
    assert [assign.source_problems(py) for py in SOURCES] == [[] for _ in SOURCES]
    src = tmp_path / "mycourse"
    src.mkdir()
    py = SOURCES[CHAPTERS.index("03")]
    text = py.read_text()
    assert "# name: sela_objective\n# points: 3" in text and "[3 points]" in text
    config = "# name: sela_objective\n# points: {}"
    (src / py.name).write_text(text.replace(config.format(3), config.format(2)))
    with pytest.raises(assign.AssignError, match=r"sela_objective: points: 2 in the configuration but \[3 points\]"):
        assign.build(tmp_path / "out", folder=src, log=None)
    assert not (tmp_path / "out").exists(), "a failed check must leave nothing behind"
    assert main(["build", f"--out={tmp_path / 'out'}", "--source", str(src)]) == 2
    assert not (tmp_path / "out").exists()


def test_unknown_chapter_is_a_clear_error(tmp_path):
    with pytest.raises(assign.AssignError, match="no assignment for chapter"):
        assign.sources(["42"])
    assert main(["build", "--out", str(tmp_path / "x"), "--chapters", "99"]) == 2
    assert main(["build", "--out", str(tmp_path / "x"), "--source", str(tmp_path / "none")]) == 2
    assert not (tmp_path / "x").exists()


def test_student_ids_from_a_pattern_or_a_roster(tmp_path, capsys):
    paths = [tmp_path / "Lee Ann_4711_903_03_sinkhorn.ipynb", tmp_path / "Bo_815_903_03_sinkhorn.ipynb"]
    ids = assign.student_ids(paths, r"_(?P<id>\d+)_")
    assert ids == {paths[0]: "4711", paths[1]: "815"}
    assert assign.student_ids(paths, r"^([A-Za-z]+)")[paths[1]] == "Bo"
    assert assign.student_ids(paths) == {p: p.stem for p in paths}
    roster = tmp_path / "roster.csv"
    roster.write_text("Student_ID,File\ns1,Lee Ann_4711_903_03_sinkhorn.ipynb\ns2,Bo_815_903_03_sinkhorn.ipynb\n")
    assert assign.student_ids(paths, roster=roster) == {paths[0]: "s1", paths[1]: "s2"}
    roster.write_text("student_id,file\ns1,Lee Ann_4711_903_03_sinkhorn.ipynb\n")
    with pytest.raises(assign.AssignError, match="not in the roster.*Bo_815"):
        assign.student_ids(paths, roster=roster)
    with pytest.raises(assign.AssignError, match="does not match the file name of Bo_815"):
        assign.student_ids(paths, r"Lee")
    # the command line stops before any work, with exit status 2
    for p in paths:
        p.write_text("{}")
    assert main(["grade", *map(str, paths), "--id-pattern=[unclosed"]) == 2
    assert "not a valid regular expression" in capsys.readouterr().err
    assert main(["grade", *map(str, paths), "--id-pattern", "^(B)", "--json", str(tmp_path / "g.json")]) == 2
    assert main(["grade", *map(str, paths), "--id-pattern", r"(\d\d)_sinkhorn"]) == 2  # both get "03"
    assert "both get the student id '03'" in capsys.readouterr().err
    assert not (tmp_path / "g.json").exists()


def test_the_edition_finds_its_own_file_under_any_name(tmp_path):
    import os
    import time

    from sslkit.assign.student import this_notebook

    nb = nbformat.v4.new_notebook(metadata={"otter": {"assignment_name": "03_x"}})
    other = nbformat.v4.new_notebook(metadata={"otter": {"assignment_name": "05_y"}})
    nbformat.write(other, tmp_path / "notes.ipynb")
    with pytest.raises(FileNotFoundError, match="03_x"):
        this_notebook("03_x", tmp_path)
    nbformat.write(nb, tmp_path / "alice_03.ipynb")
    nbformat.write(nb, tmp_path / "alice_03-Copy1.ipynb")
    old = time.time() - 100
    os.utime(tmp_path / "alice_03.ipynb", (old, old))
    assert Path(this_notebook("03_x", tmp_path)).name == "alice_03-Copy1.ipynb"  # the one saved last


def test_container_mode_stops_clearly_without_docker_and_installs_sslkit(tmp_path, capsys):
    from sslkit.assign.container import container_zip

    sub = tmp_path / "03_sub.ipynb"
    sub.write_text("{}")
    assert main(["grade", str(sub), "--container", "--image", "sslkit-test-no-such-image"]) == 2
    assert "docker" in capsys.readouterr().err.lower()
    src = tmp_path / "g.zip"
    with zipfile.ZipFile(src, "w") as z:
        z.writestr("tests/q.py", "test = {}")
        z.writestr("environment.yml", "name: otter-env\n")
    with zipfile.ZipFile(container_zip(src, tmp_path / "c.zip")) as z:
        assert sorted(z.namelist()) == ["environment.yml", "tests/q.py"] and z.read("tests/q.py") == b"test = {}"
        assert "- /opt/sslkit" in z.read("environment.yml").decode()


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
    (tmp_path / "03_x.ipynb").write_text("{}")
    with pytest.raises(assign.AssignError, match=r"pip install -e"):
        assign.grade([tmp_path / "03_x.ipynb"], log=None)


def test_wrong_key_fails_the_build(tmp_path):
    """A solution that its own hidden test rejects must stop `build` (so CI proves the keys)."""
    src = tmp_path / "src"
    src.mkdir()
    py = SOURCES[CHAPTERS.index("03")]
    text = py.read_text()
    assert 'why = "c"  # SOLUTION' in text
    (src / py.name).write_text(text.replace('why = "c"  # SOLUTION', 'why = "a"  # SOLUTION'))
    with pytest.raises(assign.AssignError, match="fails against the solution"):
        assign.build(tmp_path / "out", folder=src, log=None)


# --- built editions ----------------------------------------------------------------------

def test_build_layout_and_points(built):
    for py in SOURCES:
        for sub in ("student", "solutions"):
            assert (built / sub / f"{py.stem}.ipynb").exists()
        zip_path = built / "grader" / f"{py.stem}.zip"
        declared = {n: float(p) for n, p in re.findall(r"^# name: (\w+)\n# points: (\d+)", py.read_text(), re.M)}
        assert assign.question_points(zip_path) == declared


def test_editions_hold_no_hidden_test_and_the_student_one_no_solution(built):
    """The student edition can be handed out and the solutions published: neither holds a
    hidden test; only the grader zip (kept private) does."""
    for py in SOURCES:
        student, key = built / "student" / f"{py.stem}.ipynb", built / "solutions" / f"{py.stem}.ipynb"
        sol, hidden = _solution_lines(py), _hidden_test_lines(py)
        assert sol and hidden
        solution_text = "\n".join(c.source for kind, c in _blocks(py) if kind == "solution")
        for path in (student, key):
            text = _cell_texts(path)
            for line in hidden if path == student else [h for h in hidden if h not in solution_text]:
                assert json.dumps(line)[1:-1] not in text, f"{path.name}: hidden test in {path.parent.name}/: {line}"
            for marker in ("BEGIN SOLUTION" if path == student else "BEGIN TESTS", "hidden: true", "ASSIGNMENT CONFIG"):
                assert marker not in path.read_text(), f"{py.name}: {marker!r} in {path.parent.name}/"
        text = _cell_texts(student)
        for line in sol:
            assert json.dumps(line)[1:-1] not in text, f"{py.name}: solution line in the student edition: {line}"
        # the key does hold the solutions, and the grader the hidden tests (so the checks look at the right strings)
        assert all(json.dumps(line)[1:-1] in _cell_texts(key) for line in sol)
        with zipfile.ZipFile(built / "grader" / f"{py.stem}.zip") as z:
            tests = "".join(z.read(n).decode() for n in z.namelist() if n.startswith("tests/"))
        assert sum(line.replace('"', "'") in tests or line in tests for line in hidden) > len(hidden) // 2


def test_wrong_answers_lose_at_least_half_and_keys_keep_every_point(built):
    """Scored in-process against the grader's tests, hidden ones included (no kernel)."""
    failures = []
    for ch, tasks in MISTAKES.items():
        for question, wrong in tasks.items():
            key = assign.score_answer(built, STEM[ch], question)
            if key["points"] != key["max"] or key["max"] <= 0:
                failures.append(f"{ch} {question}: the key scores {key['points']:g} / {key['max']:g}: {key['failed']}")
            for label, source in wrong:
                got = assign.score_answer(built, STEM[ch], question, source)
                if got["points"] > got["max"] / 2:
                    failures.append(f"{ch} {question}: {label!r} keeps {got['points']:.3g} / {got['max']:g}")
    assert not failures, "\n".join(failures)


def _printing(solution: str) -> str:
    """A key's function with a leftover debugging print as its first line."""
    return solution.replace("):\n", "):\n    print('debug', flush=True)\n", 1)


def test_a_right_answer_that_prints_keeps_its_points(built):
    for py in (SOURCES[CHAPTERS.index("07")], SOURCES[CHAPTERS.index("03")]):
        q = next(q for q in assign.questions(py) if q.solution.lstrip().startswith("def "))
        got = assign.score_answer(built, py.stem, q.name, _printing(q.solution))
        assert got["points"] == got["max"] > 0, (py.name, q.name, got)


def test_student_edition_runs_top_to_bottom_unanswered_under_any_name(built, tmp_path):
    """Renamed as students and learning systems do, in a folder with an unrelated tests/."""
    from nbclient import NotebookClient

    for py in SOURCES:
        work = tmp_path / py.stem
        (work / "tests").mkdir(parents=True)
        path = work / f"alice_{py.name[:2]} - Copy1.ipynb"
        shutil.copy(built / "student" / f"{py.stem}.ipynb", path)
        nb = nbformat.read(path, as_version=4)
        answers = assign.answer_stubs(nb)
        assert set(answers) == set(assign.question_points(built / "grader" / f"{py.stem}.zip"))
        assert all(src and all("..." in s for s in src) for src in answers.values()), "an answer cell is not a stub"
        if py.name.startswith("07"):  # one answer filled in, with a leftover print: its check passes
            _set_answer(nb, "def welch", _printing(next(q.solution for q in assign.questions(py) if q.name == "welch")))
        NotebookClient(nb, timeout=300, resources={"metadata": {"path": str(work)}}).execute()
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{path.name}: {errors[0].get('ename')}: {errors[0].get('evalue')}"
        checks = [c for c in nb.cells if "grader.check(" in c.source]
        assert len(checks) == len(answers) and all(c.get("outputs") for c in checks)
        if py.name.startswith("07"):
            shown = [str(o.get("data", {}).get("text/plain", "")) for c in checks if "welch" in c.source
                     for o in c.outputs]
            assert any("All test cases passed" in t for t in shown), shown
        assert [c for c in nb.cells if c.source.strip() == "grader.check_all()"][0].get("outputs")
        assert [c for c in nb.cells if "grader.export(" in c.source], "no export cell"
        assert list(work.glob(f"{path.stem}_*.zip")), "the export cell made no zip"


PLAIN_SINKHORN = MISTAKES["03"]["sinkhorn_log"][4][1]
assert "plain scaling" in MISTAKES["03"]["sinkhorn_log"][4][0]

NAIVE_CODES = '''def codes_with_queue(scores, queue_scores, epsilon=0.05, iters=3):
    q = torch.exp(scores.float() / epsilon)   # ignores the queue, no shift before exp
    q = q / q.sum()
    B, K = q.shape
    for _ in range(iters):
        q = q / q.sum(0, keepdim=True) / K
        q = q / q.sum(1, keepdim=True) / B
    return q * B'''


def _submission(built, folder, stem, name, answers: dict[str, str], drop_checks=False, edition="student") -> Path:
    nb = nbformat.read(built / edition / f"{stem}.ipynb", as_version=4)
    for start, src in answers.items():
        _set_answer(nb, start, src)
    if drop_checks:
        nb.cells = [c for c in nb.cells if "grader.check" not in c.source]
    path = folder / name
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def graded(built, tmp_path_factory):
    """One `grade` run (two at a time) over a course with graders for 03 and 05 only."""
    tmp = tmp_path_factory.mktemp("grading")
    course, subs = tmp / "course", tmp / "returned"
    for part in ("grader", "student"):
        (course / part).mkdir(parents=True)
        for ch in ("03", "05"):
            ext = "zip" if part == "grader" else "ipynb"
            shutil.copy(built / part / f"{STEM[ch]}.{ext}", course / part / f"{STEM[ch]}.{ext}")
    subs.mkdir()
    s03, s05 = STEM["03"], STEM["05"]
    made = {
        # the key, renamed and without its check cells, printing in one function: full marks all the same
        "alice": _submission(built, subs, s03, "alice_03.ipynb", {"def sinkhorn_log": _printing(
            assign.questions(SOURCES[CHAPTERS.index("03")])[0].solution.strip())}, drop_checks=True,
            edition="solutions"),
        "carol": _submission(built, subs, s03, "carol_03.ipynb", {}),  # unanswered
        # one right answer (q11, derived by hand), plain scaling, one wrong letter
        "dave": _submission(built, subs, s03, "dave_03.ipynb", {
            "def sinkhorn_log": PLAIN_SINKHORN.strip(), "q11 =": "q11 = 0.5 * 0.64 / 0.68", "why =": 'why = "b"'}),
        "erin": _submission(built, subs, s05, "erin_05.ipynb", {
            "def codes_with_queue": NAIVE_CODES, "queue_length =": "queue_length = 3000"}),
        # crashes in one answer, deletes every file it can see in another
        "frank": _submission(built, subs, s03, "frank_03.ipynb", {
            "def sela_objective": "raise RuntimeError('student bug')",
            "q11 =": "import os\nfor f in os.listdir('.'):\n    os.remove(f) if os.path.isfile(f) else None\n"
                     "q11 = 0.4706"}),
        # a failing import: the notebook's first error, not the NameErrors after it
        "gina": _submission(built, subs, s03, "gina_03.ipynb", {"import math": "import numpyy as np\nimport math"}),
    }
    key05 = nbformat.read(built / "solutions" / f"{s05}.ipynb", as_version=4)
    with zipfile.ZipFile(subs / "bob_05.zip", "w") as z:  # what the export cell hands in
        z.writestr(f"{s05}.ipynb", nbformat.writes(key05))
    made["bob"] = subs / "bob_05.zip"
    (subs / "hank_03.ipynb").write_text('{"cells": [ truncated by an upload')
    made["hank"] = subs / "hank_03.ipynb"
    six = nbformat.read(built / "student" / f"{STEM['06']}.ipynb", as_version=4)
    nbformat.write(six, subs / "ivan_06.ipynb")
    made["ivan"] = subs / "ivan_06.ipynb"
    order = sorted(made)
    rc = main(["grade", *[str(made[k]) for k in order], "--grader", str(course), "--json",
               str(tmp / "grades" / "grades.json"), "--jobs=2", "--id-pattern", "^(?P<id>[a-z]+)_"])
    data = json.loads((tmp / "grades" / "grades.json").read_text())
    return {"rc": rc, "data": dict(zip(order, data)), "dir": tmp / "grades", "order": order, "made": made}


def test_grading_accounts_for_every_submission(graded, built):
    assert graded["rc"] == 1, "a submission could not be graded: the exit status must say so"
    d = graded["data"]
    assert [d[k]["submission"] for k in graded["order"]] == [str(graded["made"][k]) for k in graded["order"]]
    assert {k: d[k]["status"] for k in d} == {**{k: "graded" for k in d}, "hank": "invalid notebook",
                                              "ivan": "no grader"}
    assert "not a readable notebook" in d["hank"]["reason"] and d["hank"]["max"] == d["alice"]["max"] == 9
    assert "06_instance_discrimination_nce" in d["ivan"]["reason"] and d["ivan"]["max"] is None
    assert {k: d[k]["student_id"] for k in d} == {k: k for k in d}
    for key in ("alice", "bob"):  # renamed key without check cells; the export zip
        r = d[key]
        assert r["total"] == r["max"] > 0 and all(q["points"] == q["max"] for q in r["questions"].values()), r
    assert d["carol"]["total"] == 0 and all(q["note"] == "not answered" for q in d["carol"]["questions"].values())
    w = d["dave"]["questions"]
    assert w["sinkhorn_log"]["points"] == assign.score_answer(  # otter's kernel and the in-process scoring agree
        built, STEM["03"], "sinkhorn_log", PLAIN_SINKHORN)["points"] <= 2
    assert w["two_by_two"]["points"] == w["two_by_two"]["max"] and w["why_log_domain"]["points"] == 0
    assert w["sela_objective"]["note"] == "not answered"
    assert any("lambda = 500" in f for f in w["sinkhorn_log"]["failed"])
    w5 = d["erin"]["questions"]
    assert w5["codes_with_queue"]["points"] <= 2 and w5["smallest_queue"]["points"] == 0
    h = d["frank"]["questions"]
    assert h["sela_objective"]["points"] == 0 and "RuntimeError: student bug" in d["frank"]["first_error"]
    assert h["two_by_two"]["points"] == h["two_by_two"]["max"]
    assert "ModuleNotFoundError: No module named 'numpyy'" in d["gina"]["first_error"]


def test_grades_csv_per_assignment_with_ids_and_percentages(graded):
    rows = {}
    for path in sorted(graded["dir"].glob("grades_*.csv")):
        with open(path, newline="") as f:
            rows[path.stem] = list(csv.DictReader(f))
    assert sorted(rows) == [f"grades_{STEM['03']}", f"grades_{STEM['05']}", f"grades_{STEM['06']}"]
    everyone = [r for table in rows.values() for r in table]
    assert sorted(r["student_id"] for r in everyone) == sorted(graded["data"])
    assert all(r["max"] not in ("0", "0.0") for r in everyone), "a row with a maximum of 0"
    by = {r["student_id"]: r for r in everyone}
    assert list(by["alice"])[:7] == ["student_id", "chapter", "assignment", "points", "max", "percentage", "status"]
    assert (by["alice"]["chapter"], by["alice"]["points"], by["alice"]["max"], by["alice"]["percentage"]) == \
        ("03", "9", "9", "100")
    dave = graded["data"]["dave"]
    assert float(by["dave"]["percentage"]) == round(100 * dave["total"] / 9, 1)
    assert (by["hank"]["points"], by["hank"]["max"], by["hank"]["status"]) == ("", "9", "invalid notebook")
    assert (by["ivan"]["max"], by["ivan"]["status"]) == ("", "no grader")


def test_feedback_files_name_failures_without_hidden_inputs(graded):
    folder = graded["dir"] / "feedback"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{Path(p).stem}.md" for p in graded["made"].values())
    hidden = [line for py in SOURCES if py.name[:2] in ("03", "05") for line in _hidden_test_lines(py)]
    for path in folder.iterdir():
        text = path.read_text()
        leaked = [line for line in hidden if line in text]
        assert not leaked, f"{path.name} shows hidden test code: {leaked[0]}"
    dave = (folder / "dave_03.md").read_text()
    assert "| sinkhorn_log |" in dave and "hidden test 4: AssertionError: log Q has inf/NaN for lambda = 500" in dave
    gina = (folder / "gina_03.md").read_text()
    assert "ModuleNotFoundError: No module named 'numpyy'" in gina and "cell 3" in gina
    assert "Not graded (invalid notebook)" in (folder / "hank_03.md").read_text()


def test_looping_submission_times_out_with_a_note(built, tmp_path):
    s05 = STEM["05"]
    loop = _submission(built, tmp_path, s05, f"{s05}_loop.ipynb", {"collapse_value =": "while True:\n    pass"})
    [r] = assign.grade([loop], built, timeout=25, log=None)
    assert r.status == "timed out" and r.total == 0 and r.max > 0 and r.percentage is None
    assert all("grading stopped after 25 s" in q["note"] for q in r.questions.values())
