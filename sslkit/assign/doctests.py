"""otter's doctest runner for OK-format tests, except that what the answer prints does not fail a
test: a student's leftover ``print`` in a function would otherwise cost every test that calls
it ("Expected nothing, Got: ..."). Output is still compared where a test expects some.

:func:`install` swaps it into otter in the process that runs the tests: the student's kernel
(the editions' first cell calls it), the grading kernel (through :data:`GRADING_CELL`, which
``grade`` puts before the submission's cells, whatever the student did to the first cell) and
:func:`sslkit.assign.score_answer`.
"""

from __future__ import annotations

import doctest
import io
import os
from contextlib import contextmanager, redirect_stderr, redirect_stdout

GRADING_CELL = ("# sslkit.assign: printed output does not fail a test\n"
                "import sslkit.assign.doctests as _sslkit_doctests\n"
                "_sslkit_doctests.install()")


class _PrintsAllowed(doctest.OutputChecker):
    def check_output(self, want, got, optionflags):
        return True if not want.strip() else super().check_output(want, got, optionflags)


def run_doctest(name: str, doctest_string: str, global_environment: dict) -> tuple[bool, str]:
    """``otter.test_files.ok_test.run_doctest`` (otter-grader 7.0.0) with :class:`_PrintsAllowed`."""
    from otter.utils import hide_outputs

    examples = doctest.DocTestParser().parse(doctest_string, name)
    test = doctest.DocTest([e for e in examples if isinstance(e, doctest.Example)], global_environment, name,
                           None, None, doctest_string)
    runner = doctest.DocTestRunner(checker=_PrintsAllowed(), verbose=True)
    report = io.StringIO()
    with redirect_stdout(report), redirect_stderr(report), hide_outputs():
        runner.run(test, clear_globs=False)
    with open(os.devnull, "w") as f, redirect_stderr(f), redirect_stdout(f):
        result = runner.summarize(verbose=True)
    return (True, "") if result.failed == 0 else (False, report.getvalue())


def install() -> None:
    """Make otter's OK-format tests use :func:`run_doctest` in this process."""
    from otter.test_files import ok_test

    ok_test.run_doctest = run_doctest


def with_grading_cell(nb):
    """A copy of a submission's notebook with :data:`GRADING_CELL` first (otter puts its own
    grading cell before it)."""
    import copy

    import nbformat

    out = copy.deepcopy(nb)
    out.cells.insert(0, nbformat.v4.new_code_cell(GRADING_CELL))
    return out


@contextmanager
def installed():
    """:func:`install` for the duration of a ``with`` block."""
    from otter.test_files import ok_test

    before = ok_test.run_doctest
    ok_test.run_doctest = run_doctest
    try:
        yield
    finally:
        ok_test.run_doctest = before
