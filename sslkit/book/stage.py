"""The source folder Sphinx builds: ``book/`` (pages, config, bibliography) and every chapter.

Chapters are found by their names (``chapters/NN_slug.ipynb``) and keep them, so a new chapter
appears in the table of contents and on the landing page without a change here.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat

from ..results import RESULTS, read_results, results_table, table_markdown
from .references import load_bib
from .transforms import chapter_page

CHAPTER_GLOB = "[0-9][0-9]_*.ipynb"
RESULTS_MARK = "<!-- results-table"
LIST_MARK = "<!-- chapter-list"


def chapters(root: Path) -> list[Path]:
    return sorted((root / "chapters").glob(CHAPTER_GLOB))


def chapter_title(nb) -> str:
    """The chapter's first level-1 heading."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^# (.+)$", cell.source, re.M)
            if m:
                return m.group(1).strip()
    return "untitled"


def results_page(text: str, root: Path) -> str:
    """The Results page with its table generated from the stored runs."""
    lines = read_results(root / RESULTS)
    devices = sorted({f"{r.get('device_name') or r['device']} ({r.get('threads')} threads)" for r in lines})
    table = (f"{table_markdown(results_table(lines))}\n\nMean ± standard deviation over seeds, from "
             f"`{RESULTS}` ({len(lines)} runs; device: {'; '.join(devices) or 'none'}).")
    return "\n".join(table if x.startswith(RESULTS_MARK) else x for x in text.split("\n"))


def landing_page(text: str, titles: dict[str, str]) -> str:
    """The landing page, with a line for each chapter its list lacks (its title, from the notebook)."""
    missing = [f"- [{title}]({name})" for name, title in titles.items() if name not in text]
    return "\n".join("\n".join(missing) if x.startswith(LIST_MARK) else x for x in text.split("\n"))


def stage(root: Path, src: Path) -> list[str]:
    """Write the site's sources into ``src``; return the problems found (unmatched references)."""
    book = root / "book"
    shutil.copytree(book, src, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "_build"))
    bib = load_bib(book / "references.bib")
    found = chapters(root)
    pages = {p.name[:2]: p.name for p in found}
    problems, titles = [], {}
    for path in found:
        nb = nbformat.read(path, as_version=4)
        titles[path.name] = chapter_title(nb)
        problems += chapter_page(nb, path.stem, pages, bib)
        nbformat.write(nb, src / path.name)
    (src / "index.md").write_text(landing_page((book / "index.md").read_text(), titles))
    (src / "results.md").write_text(results_page((book / "results.md").read_text(), root))
    return problems
