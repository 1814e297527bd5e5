"""python -m sslkit.assign build|grade|book: course assignments from the chapters' exercises."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import DEFAULT_TIMEOUT, AssignError, build, chapter_for, chapter_section, book_section, grade, sources, \
    write_book_section, write_reports

EXAMPLES = """examples:
  python -m sslkit.assign build --out course --chapters 03 05
  python -m sslkit.assign grade submissions/*.ipynb --grader course --json grades.json
  python -m sslkit.assign book --check
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sslkit.assign", description=__doc__, epilog=EXAMPLES,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write DIR/student/, DIR/solutions/ and DIR/grader/ (every key is run)")
    b.add_argument("--out", required=True, type=Path, help="output folder")
    b.add_argument("--chapters", nargs="*", help="chapter numbers, e.g. 03 05 (default: every chapter)")
    b.add_argument("--no-run-tests", action="store_true", help="skip running the tests against the solutions")
    g = sub.add_parser("grade", help="grade submitted notebooks: per-question points and totals")
    g.add_argument("submissions", nargs="+", type=Path, help="submitted .ipynb files (student editions, filled in)")
    g.add_argument("--grader", type=Path, help="a `build --out` folder (default: build the graders first)")
    g.add_argument("--json", type=Path, help="write the results here (a list, one object per submission) "
                                             "and a .csv beside it")
    g.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                   help=f"seconds per submission before it is stopped (default {DEFAULT_TIMEOUT})")
    k = sub.add_parser("book", help="write (or --check) each chapter's exercise section from its assignment")
    k.add_argument("--chapters", nargs="*")
    k.add_argument("--check", action="store_true", help="only report chapters whose section differs")
    args = ap.parse_args(argv)
    try:
        t0 = time.perf_counter()
        if args.cmd == "build":
            build(args.out, args.chapters, run_tests=not args.no_run_tests)
            print(f"built in {time.perf_counter() - t0:.0f} s: hand out {args.out / 'student'}/, "
                  f"grade with `python -m sslkit.assign grade SUBMISSION.ipynb --grader {args.out}`")
        elif args.cmd == "grade":
            results = grade(args.submissions, args.grader, args.timeout)
            if args.json:
                j, c = write_reports(results, args.json)
                print(f"wrote {j} and {c}")
            print(f"graded {len(results)} submission(s) in {time.perf_counter() - t0:.0f} s")
        else:
            bad = []
            for py in sources(args.chapters):
                book = chapter_for(py)
                if args.check:
                    if chapter_section(book) != book_section(py):
                        bad.append(book.name)
                else:
                    write_book_section(py)
                    print(f"wrote the exercise section of {book}: now `jupytext --sync {book}` and re-execute it")
            if bad:
                print("exercise sections out of date: " + ", ".join(bad) + " (run `python -m sslkit.assign book`)")
                return 1
    except AssignError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
