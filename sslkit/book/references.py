"""A chapter's References section and the book's BibTeX file, matched by their links.

A chapter lists its references as Markdown bullets that read well in Jupyter, each with a
link (arXiv, DOI or a publisher's page). ``book/references.bib`` holds one entry per work with
its ``eprint`` (arXiv), ``doi`` or ``url``. A bullet cites the entry that has one of the
bullet's links; the site turns the bullet into a citation of its bibliography entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_HEADING = re.compile(r"^## References\s*$", re.M)
_NEXT = re.compile(r"^#{1,2} ", re.M)
_LINK = re.compile(r"\]\((https?://[^)\s]+)\)")
_ARXIV = re.compile(r"arxiv\.org/(?:abs|pdf)/(\d{4}\.\d{4,5})")
_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s?#]+)")


def link_ids(url: str) -> set[str]:
    """What a link identifies: ``arxiv:ID``, ``doi:ID`` (lower case) and the address itself
    without scheme, ``www.`` and trailing slash."""
    ids = {"url:" + re.sub(r"^https?://(www\.)?", "", url.strip()).rstrip("/").lower()}
    if m := _ARXIV.search(url):
        ids.add("arxiv:" + m.group(1))
    if m := _DOI.search(url):
        ids.add("doi:" + m.group(1).rstrip("/.").lower())
    return ids


def entry_ids(fields: dict) -> set[str]:
    """The identifiers of a BibTeX entry: its DOI, its arXiv eprint and its url."""
    ids = set()
    if fields.get("doi"):
        ids.add("doi:" + fields["doi"].strip().lower())
    if fields.get("eprint"):
        ids.add("arxiv:" + fields["eprint"].strip())
    if fields.get("url"):
        ids |= link_ids(fields["url"])
    return ids


def load_bib(path: Path) -> dict[str, set[str]]:
    """Each entry's key and identifiers (pybtex parses the file, as sphinxcontrib-bibtex does)."""
    from pybtex.database import parse_file

    return {key: entry_ids({k.lower(): v for k, v in e.fields.items()})
            for key, e in parse_file(str(path), bib_format="bibtex").entries.items()}


@dataclass
class Bullet:
    line: int  # index of the bullet's first line in the cell
    text: str  # the bullet's lines joined
    keys: list[str]  # the bib entries it matches (one when all is well)


def reference_bullets(source: str, bib: dict[str, set[str]]) -> list[Bullet]:
    """The bullets of a References section with the entries their links match."""
    lines = source.split("\n")
    starts = [i for i, x in enumerate(lines) if x.startswith(("* ", "- "))]
    bullets = []
    for a, b in zip(starts, starts[1:] + [len(lines)]):
        end = next((j for j in range(a + 1, b) if not lines[j].startswith((" ", "\t"))), b)
        text = " ".join(x.strip() for x in lines[a:end])
        ids = set().union(*[link_ids(u) for u in _LINK.findall(text)])
        bullets.append(Bullet(a, text, sorted(k for k, v in bib.items() if v & ids)))
    return bullets


def references_span(source: str) -> tuple[int, int] | None:
    """Where a Markdown cell's References section starts and ends (the next heading of level
    1 or 2, or the cell's end); None when the cell has none."""
    m = _HEADING.search(source)
    if m is None:
        return None
    end = _NEXT.search(source, m.end())
    return m.start(), end.start() if end else len(source)


def cite_references(source: str, bib: dict[str, set[str]]) -> tuple[str, list[str]]:
    """The section with each matched bullet opened by a citation of its entry (MyST's ``{cite:p}``),
    and a message for each bullet that matches no entry or several."""
    lines, problems = source.split("\n"), []
    for b in reference_bullets(source, bib):
        if len(b.keys) == 1:
            lines[b.line] = lines[b.line][:2] + "{cite:p}`" + b.keys[0] + "` " + lines[b.line][2:]
        else:
            problems.append(f"reference matches {len(b.keys)} bib entries {b.keys or ''}: {b.text[:70]}...")
    return "\n".join(lines), problems
