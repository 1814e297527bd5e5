"""What ``grade --json FILE`` writes: the results as JSON, a CSV per assignment for a learning
management system, and one feedback file per submission to hand back to its student.

* ``FILE``: a list with one object per submission (:meth:`Result.as_dict`).
* ``FILE``'s stem + ``_<assignment>.csv``: one row per submission of that assignment, with the
  columns :data:`CSV_COLUMNS` and then each question's points; a submission that could not be
  graded has empty points and percentage and its status and reason. Submissions whose
  assignment could not be told go to ``_unknown.csv``. No row has a maximum of 0: an unknown
  maximum is left empty.
* ``feedback/<submission>.md`` beside ``FILE`` (or in the folder given): points per question,
  each failed test's description (never a hidden test's code or inputs), the first error the
  notebook raised; or why the submission could not be graded.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

from .results import Result, pts

CSV_COLUMNS = ["student_id", "chapter", "assignment", "points", "max", "percentage", "status", "note", "submission"]


def _num(x) -> str:
    """A CSV number: at most two decimals, empty for None."""
    return "" if x is None else pts(x)


def write_csvs(results: list[Result], json_path: Path) -> list[Path]:
    by: dict[str, list[Result]] = {}
    for r in results:
        by.setdefault(r.assignment or "unknown", []).append(r)
    paths = []
    for assignment, rows in by.items():
        names = []
        for r in rows:
            names += [q for q in r.questions if q not in names]
        path = json_path.with_name(f"{json_path.stem}_{assignment}.csv")
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(CSV_COLUMNS + names)
            for r in rows:
                pts = [_num(r.questions[q]["points"]) if r.graded and q in r.questions else "" for q in names]
                w.writerow([r.student_id, r.chapter or "", r.assignment or "", _num(r.total) if r.graded else "",
                            _num(r.max), _num(r.percentage), r.status, r.reason, r.submission] + pts)
        paths.append(path)
    return paths


def feedback_names(results: list[Result]) -> list[str]:
    """A file name per submission, after it: ``stem.md``, or ``id_stem.md`` where stems repeat."""
    stems = Counter(Path(r.submission).stem for r in results)
    names = [f"{Path(r.submission).stem}.md" if stems[Path(r.submission).stem] == 1 else
             f"{r.student_id}_{Path(r.submission).stem}.md" for r in results]
    seen: Counter = Counter()
    out = []
    for n in names:
        seen[n] += 1
        out.append(n if seen[n] == 1 else n.replace(".md", f"_{seen[n]}.md"))
    return out


def feedback_text(r: Result) -> str:
    """The Markdown feedback of one submission (for its student)."""
    head = [f"# Feedback on {Path(r.submission).name}", ""]
    about = [f"assignment {r.assignment}" if r.assignment else "", f"student id {r.student_id}" if r.student_id else ""]
    line = "; ".join(a for a in about if a)
    head += [line[:1].upper() + line[1:] + ".", ""]
    if not r.graded:
        return "\n".join(head + [f"**Not graded ({r.status}).** {r.reason}", "",
                                 "Nothing was scored: fix this and submit again, or ask your teacher.", ""])
    lines = head + [f"**{pts(r.total)} / {pts(r.max)} points ({r.percentage:g} %)**", "",
                    "| question | points | result |", "|---|---:|---|"]
    for name, q in r.questions.items():
        result = q["note"] if not q.get("failed") or q["note"] == "not answered" else \
            f"{len(q['failed'])} test(s) failed"
        lines.append(f"| {name} | {pts(q['points'])} / {pts(q['max'])} | {result} |")
    failed = [(n, q) for n, q in r.questions.items() if q.get("failed") and q["note"] != "not answered"]
    if failed:
        lines += ["", "## Failed tests", ""]
        for name, q in failed:
            lines += [f"**{name}** ({pts(q['points'])} / {pts(q['max'])})", ""] + [f"- {f}" for f in q["failed"]] + [""]
    if r.first_error:
        lines += ["", "## The first error your notebook raised", "", r.first_error, "",
                  "Later errors (a NameError, say) often follow from it: fix this one first.", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_feedback(results: list[Result], folder: Path) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for r, name in zip(results, feedback_names(results)):
        (folder / name).write_text(feedback_text(r))
        paths.append(folder / name)
    return paths


def write_reports(results: list[Result], json_path: Path, feedback: Path | None = None) -> dict[str, list[Path]]:
    """The JSON, a CSV per assignment and the feedback files (in ``feedback``, default a
    ``feedback/`` folder beside the JSON); returns their paths by kind."""
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps([r.as_dict() for r in results], indent=2) + "\n")
    return {"json": [json_path], "csv": write_csvs(results, json_path),
            "feedback": write_feedback(results, feedback or json_path.parent / "feedback")}
