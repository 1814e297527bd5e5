"""python -m sslkit.book build [--out DIR]: the book as a static website, from the executed chapters."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import DEFAULT_OUT, ROOT, BookError, build, check_out, check_root


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sslkit.book", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the website from the chapters' stored outputs (no execution, no network)")
    b.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"output folder, new, empty or an earlier build (default: {DEFAULT_OUT.relative_to(ROOT)})")
    b.add_argument("--verbose", action="store_true", help="print Sphinx's progress")
    args = p.parse_args(argv)
    try:
        check_out(args.out.resolve())
        check_root(ROOT)
    except BookError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    t = time.perf_counter()
    index, problems = build(args.out, quiet=not args.verbose)
    for x in problems:
        print(f"warning: {x}", file=sys.stderr)
    print(f"site built in {time.perf_counter() - t:.0f} s: {index} ({len(problems)} warnings)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
