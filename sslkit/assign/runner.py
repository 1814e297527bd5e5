"""``python -m sslkit.assign.runner SUBMISSION GRADER.zip OUT.json``: grade one submission with
otter (its non-containerised ``otter run``) and write :func:`~sslkit.assign.results.otter_outcome`
as JSON. ``grade`` starts it in a scratch folder, in its own process group, with a time limit."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    submission, grader_zip, out = (argv if argv is not None else sys.argv[1:])
    from otter.api import grade_submission

    from .plan import read_submission
    from .results import otter_outcome

    original = read_submission(Path(submission))
    results = grade_submission(submission, grader_zip, quiet=True)
    Path(out).write_text(json.dumps(otter_outcome(results, original)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
