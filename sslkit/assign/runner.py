"""``python -m sslkit.assign.runner SUBMISSION GRADER.zip OUT.json``: grade one submission with
otter (its non-containerised ``otter run``) and write :func:`~sslkit.assign.results.otter_outcome`
as JSON. ``grade`` starts it in a scratch folder, in its own process group, with a time limit.
The notebook graded is the submission's (taken out of the zip of the export cell) with
:data:`~sslkit.assign.doctests.GRADING_CELL` first."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    submission, grader_zip, out = (argv if argv is not None else sys.argv[1:])
    import nbformat
    from otter.api import grade_submission

    from .doctests import with_grading_cell
    from .plan import read_submission
    from .results import otter_outcome

    original = read_submission(Path(submission))  # a scratch copy: rewritten as a notebook
    graded = Path(submission).with_suffix(".ipynb")
    nbformat.write(with_grading_cell(original), graded)
    results = grade_submission(str(graded), grader_zip, quiet=True)
    Path(out).write_text(json.dumps(otter_outcome(results, original)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
