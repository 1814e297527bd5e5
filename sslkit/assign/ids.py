"""Student ids of submissions: from the file name (a regular expression) or from a roster.

* ``--id-pattern REGEX`` is searched in each file's name; the id is its group ``id``, else its
  first group, else the whole match. Canvas names downloads ``name_12345_67890_file.ipynb``:
  ``--id-pattern '_(?P<id>\\d+)_'`` takes the user id 12345.
* ``--roster FILE`` is a CSV with a header holding a ``student_id`` (or ``id``) column and a
  ``file`` (or ``submission``) column: the submission's file name.
* Without either, the id is the file name without its extension.

Every submission must get an id, and no two submissions of one assignment the same one: the
command stops before any grading otherwise, saying which files to fix.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from .runtime import AssignError

ID_COLUMNS = ("student_id", "id")
FILE_COLUMNS = ("file", "submission", "filename")


def compile_pattern(pattern: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as err:
        raise AssignError(f"--id-pattern {pattern!r} is not a valid regular expression ({err})") from err


def read_roster(path: Path) -> dict[str, str]:
    """File name -> student id from a roster CSV."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except OSError as err:
        raise AssignError(f"cannot read the roster {path}: {err.strerror}") from err
    header = [h.strip().lower() for h in (rows[0].keys() if rows else [])]
    id_col = next((c for c in ID_COLUMNS if c in header), None)
    file_col = next((c for c in FILE_COLUMNS if c in header), None)
    if not rows or id_col is None or file_col is None:
        raise AssignError(f"the roster {path} needs a header with a 'student_id' and a 'file' column "
                          "(the submission's file name) and one row per submission")
    out = {}
    for row in rows:
        row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        if row[file_col]:
            out[Path(row[file_col]).name] = row[id_col]
    return out


def student_ids(paths: list[Path], pattern: str | None = None, roster: Path | None = None) -> dict[Path, str]:
    """Each submission's student id (see the module's docstring); raises AssignError, listing
    the files, when a file name does not match the pattern or is not in the roster."""
    if pattern and roster:
        raise AssignError("give --id-pattern or --roster, not both")
    ids, missing = {}, []
    if roster:
        table = read_roster(Path(roster))
        for p in paths:
            if table.get(p.name):
                ids[p] = table[p.name]
            else:
                missing.append(p.name)
        if missing:
            raise AssignError(f"not in the roster {roster} (or without an id there): {_some(missing)}; add a row "
                              "for each (student_id,file)")
        return ids
    rx = compile_pattern(pattern) if pattern else None
    for p in paths:
        if rx is None:
            ids[p] = p.stem
            continue
        m = rx.search(p.name)
        if not m:
            missing.append(p.name)
            continue
        ids[p] = m.group("id") if "id" in rx.groupindex else (m.group(1) if rx.groups else m.group(0))
    if missing:
        raise AssignError(f"--id-pattern {pattern!r} does not match the file name of {_some(missing)}; "
                          "fix the pattern or rename the files")
    return ids


def check_unique(pairs: list[tuple[Path, str, str | None]]) -> None:
    """(path, id, assignment) triples: no two submissions of an assignment may share an id."""
    seen: dict[tuple[str, str], Path] = {}
    for path, sid, assignment in pairs:
        if assignment is None:
            continue
        if (sid, assignment) in seen:
            raise AssignError(f"{seen[sid, assignment]} and {path} both get the student id {sid!r} for "
                              f"{assignment}: pass an --id-pattern or a --roster that tells them apart")
        seen[sid, assignment] = path


def _some(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
