"""Which assignment each submission belongs to, read before any grading.

A submission is a notebook (``.ipynb``) or the zip that the student edition's export cell
makes (one notebook inside). Its assignment is the one otter wrote in its metadata; a notebook
that cannot be read is matched by its file name (the assignment's name, or its two-digit
chapter number), so that it is reported under the right assignment.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Planned:
    path: Path
    assignment: str | None
    problem: str | None = None     # why it cannot be graded, found before grading
    nb: object = None              # the notebook, when it could be read


def read_submission(path: Path):
    """The notebook of a submission (``.ipynb``, or a zip holding one). Raises ValueError."""
    import nbformat

    path = Path(path)
    if path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if n.endswith(".ipynb") and not n.startswith("__MACOSX")]
                if len(names) != 1:
                    raise ValueError(f"a zip must hold one notebook; this one holds {len(names)}")
                return nbformat.reads(z.read(names[0]).decode("utf-8"), as_version=4)
        except zipfile.BadZipFile as err:
            raise ValueError(f"not a zip file ({err})") from err
    if path.suffix.lower() != ".ipynb":
        raise ValueError(f"not a notebook ({path.suffix or 'no extension'}): submit the .ipynb file")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # not JSON, not a notebook, not UTF-8: all the same to the teacher
        raise ValueError(f"not a readable notebook ({type(err).__name__}: {str(err)[:120]})") from err
    if not isinstance(nb.get("cells"), list):
        raise ValueError("not a readable notebook (no cells)")
    return nb


def assignment_from_name(filename: str, known: list[str]) -> str | None:
    """The assignment of ``known`` that a file name names: its full name, else its chapter
    number as a two-digit number of its own (``alice_03.ipynb``); None if none or several."""
    full = [a for a in known if a in filename]
    if len(full) == 1:
        return full[0]
    numbers = set(re.findall(r"(?<!\d)(\d\d)(?!\d)", filename))
    hits = [a for a in known if a[:2] in numbers]
    return hits[0] if len(hits) == 1 else None


def plan(paths: list[Path], known: list[str]) -> list[Planned]:
    """Read every submission and tell its assignment (a name of ``known`` or of its metadata)."""
    out = []
    for p in paths:
        try:
            nb = read_submission(p)
        except ValueError as err:
            out.append(Planned(p, assignment_from_name(p.name, known), f"{err}"))
            continue
        name = nb.metadata.get("otter", {}).get("assignment_name") or assignment_from_name(p.name, known)
        problem = None if name else ("not an edition of any assignment (no otter metadata, and its file "
                                     f"name names none of {', '.join(known) or 'the assignments'})")
        out.append(Planned(p, name, problem, nb))
    return out
