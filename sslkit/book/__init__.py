"""The book as a website: ``python -m sslkit.book build --out DIR``.

The chapters' executed notebooks (their stored outputs: nothing is re-executed) and the pages
in ``book/`` are staged into one folder (see ``stage``) and built by Sphinx with MyST-NB and
sphinx-book-theme, the stack of Jupyter Book 1, which needs no network: MathJax, Vega-Lite and
the search index are served from the site itself.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout: book/, chapters/
DEFAULT_OUT = ROOT / "build" / "book"  # build/ is git-ignored


class BookError(Exception):
    """A user error, found before any work."""


def check_out(out: Path) -> None:
    """``out`` must be new, empty or an earlier build of the site (which is replaced)."""
    if out.exists() and not out.is_dir():
        raise BookError(f"--out {out}: is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / ".buildinfo").exists():
        raise BookError(f"--out {out}: folder is not empty and holds no earlier build of the site "
                        "(no .buildinfo); choose a new or empty folder")


def check_root(root: Path) -> None:
    if not (root / "book" / "conf.py").exists():
        raise BookError(f"{root} has no book/conf.py: run from a checkout of the book")
    from .stage import chapters

    if not chapters(root):
        raise BookError(f"{root / 'chapters'} holds no executed chapter (NN_slug.ipynb)")


def build(out: Path = DEFAULT_OUT, root: Path = ROOT, quiet: bool = True) -> tuple[Path, list[str]]:
    """Build the site into ``out``; return its index page and the problems found (unmatched
    references, Sphinx warnings)."""
    from sphinx.cmd.build import build_main

    from .stage import stage

    out, root = Path(out).resolve(), Path(root).resolve()
    check_out(out)
    check_root(root)
    with tempfile.TemporaryDirectory(prefix="sslkit-book-") as tmp:
        src, warnings = Path(tmp) / "src", Path(tmp) / "warnings.txt"
        problems = stage(root, src)
        if out.exists():
            shutil.rmtree(out)
        args = ["-b", "html", "-d", str(Path(tmp) / "doctrees"), "-w", str(warnings), str(src), str(out)]
        rc = build_main(args + (["-q"] if quiet else []))
        problems += [x for x in warnings.read_text().splitlines() if x.strip()] if warnings.exists() else []
    if rc != 0:
        raise RuntimeError(f"sphinx-build failed (exit {rc}): {problems[-3:]}")
    return out / "index.html", problems


__all__ = ["build", "BookError", "DEFAULT_OUT", "ROOT"]
