"""python -m sslkit.assign build|grade|book: course assignments from the chapters' exercises.

Exit status: 0 done; 1 some submissions could not be graded (each is listed, and has its row
and feedback file), or `book --check` found sections out of date; 2 a mistake in the command or
the sources, reported before any work.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import AssignError, book_section, build, chapter_for, chapter_section, grade, sources, student_ids, \
    write_book_section, write_reports
from .container import DEFAULT_IMAGE, Containers
from .runtime import DEFAULT_TIMEOUT

EXAMPLES = """examples:
  python -m sslkit.assign build --out course --chapters 03 05
  python -m sslkit.assign build --out course --source my-course/assignments
  python -m sslkit.assign grade returned/*.ipynb --grader course --json grades/grades.json --jobs 2
  python -m sslkit.assign grade returned/*.ipynb --grader course --json grades/grades.json \\
      --id-pattern '_(?P<id>\\d+)_'          (or --roster roster.csv with student_id,file columns)
  python -m sslkit.assign book --check
"""


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m sslkit.assign", description=__doc__, epilog=EXAMPLES,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write DIR/student/, DIR/solutions/ and DIR/grader/ (every key is run)")
    b.add_argument("--out", required=True, type=Path, help="output folder")
    b.add_argument("--chapters", nargs="*", help="chapter numbers, e.g. 03 05 (default: every chapter)")
    b.add_argument("--source", type=Path, help="a folder of teacher sources NN_slug.py, e.g. a course's own copy "
                                               "of chapters/assignments/ (default: the book's)")
    b.add_argument("--no-run-tests", action="store_true", help="skip running the tests against the solutions")
    g = sub.add_parser("grade", help="grade submissions: points per question, CSVs per assignment, feedback")
    g.add_argument("submissions", nargs="+", type=Path,
                   help="submitted notebooks (.ipynb, any name) or the zips of the export cell")
    g.add_argument("--grader", type=Path, help="a `build --out` folder (default: build the graders first)")
    g.add_argument("--source", type=Path, help="without --grader: build the graders from this folder of sources")
    g.add_argument("--json", type=Path, help="write the results here, a CSV per assignment beside it "
                                             "(STEM_<assignment>.csv) and feedback files in feedback/ beside it")
    g.add_argument("--feedback", type=Path, help="the folder for the feedback files (default: feedback/ beside --json)")
    g.add_argument("--id-pattern", help="regular expression for the student id in a file name: its group 'id', "
                                        "else its first group, else the match (default: the file name's stem)")
    g.add_argument("--roster", type=Path, help="CSV with student_id and file columns (instead of --id-pattern)")
    g.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                   help=f"seconds per submission before it is stopped (default {DEFAULT_TIMEOUT})")
    g.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default 1)")
    g.add_argument("--container", action="store_true",
                   help="grade each submission in otter's Docker container, without network (untrusted code)")
    g.add_argument("--image", default=DEFAULT_IMAGE,
                   help=f"with --container: base image holding the repository at /opt/sslkit (default {DEFAULT_IMAGE})")
    k = sub.add_parser("book", help="write (or --check) each chapter's exercise section from its assignment")
    k.add_argument("--chapters", nargs="*")
    k.add_argument("--check", action="store_true", help="only report chapters whose section differs")
    return ap


def _grade(args) -> int:
    t0 = time.perf_counter()
    if args.feedback and not args.json:
        raise AssignError("--feedback goes with --json (the grades the feedback belongs to)")
    if args.image != DEFAULT_IMAGE and not args.container:
        raise AssignError("--image goes with --container")
    ids = student_ids(args.submissions, args.id_pattern, args.roster)
    results = grade(args.submissions, args.grader, args.timeout, source=args.source, jobs=args.jobs, ids=ids,
                    container=Containers(args.image) if args.container else None)
    if args.json:
        paths = write_reports(results, args.json, args.feedback)
        print(f"wrote {paths['json'][0]}, {', '.join(str(p) for p in paths['csv'])} and "
              f"{len(paths['feedback'])} feedback file(s) in {paths['feedback'][0].parent}")
    bad = [r for r in results if not r.graded]
    print(f"graded {len(results) - len(bad)} of {len(results)} submission(s) in {time.perf_counter() - t0:.0f} s"
          + ("; NOT GRADED: " + "; ".join(f"{r.submission} ({r.status})" for r in bad) if bad else ""))
    return 1 if bad else 0


def _book(args) -> int:
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
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.cmd == "build":
            t0 = time.perf_counter()
            build(args.out, args.chapters, run_tests=not args.no_run_tests, folder=args.source)
            print(f"built in {time.perf_counter() - t0:.0f} s: hand out {args.out / 'student'}/, keep "
                  f"{args.out / 'grader'}/ private (hidden tests), grade with `python -m sslkit.assign grade "
                  f"SUBMISSIONS --grader {args.out} --json grades/grades.json`")
            return 0
        return _grade(args) if args.cmd == "grade" else _book(args)
    except AssignError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
