"""Course assignments from the chapters' exercises: a student edition, the key and a grader.

The teacher's source of a chapter's exercises is ``chapters/assignments/NN_slug.py`` (or a
course's own copy of that folder), a jupytext (percent) notebook in otter-grader's assignment
format (``# BEGIN QUESTION``, ``# BEGIN SOLUTION``, ``# BEGIN TESTS``, hidden tests marked
``hidden: true``). The modules, one concept each:

* :mod:`.source`: the sources as questions, checked before a build (points in the prompts).
* :mod:`.build`: ``otter assign`` on each source: ``student/``, ``solutions/``, ``grader/``.
* :mod:`.student`: what the student edition's first cell calls to find its own file.
* :mod:`.plan`, :mod:`.ids`: each submission's assignment and student id, before grading.
* :mod:`.grade`, :mod:`.runner`, :mod:`.container`: grading (in parallel, or in Docker).
* :mod:`.results`, :mod:`.reports`: results, the CSVs per assignment and feedback files.
* :mod:`.doctests`: otter's test runner, without failing a test for what the answer prints.
* :mod:`.answers`: scoring an answer against a question's tests in-process (no kernel).
* :mod:`.book`: the exercise section of a book chapter.

``python -m sslkit.assign --help`` is the command line; ``book/teachers.md`` the guide.
"""

from __future__ import annotations

from .answers import score_answer
from .book import book_section, chapter_for, chapter_section, write_book_section
from .build import build
from .container import Containers
from .grade import grade, grader_zips, question_points
from .ids import student_ids
from .plan import read_submission
from .reports import write_reports
from .results import Result, answer_stubs, format_result
from .runtime import DEFAULT_TIMEOUT, REPO, SOURCES, AssignError
from .source import boundary, check_sources, questions, read_source, source_problems, sources

__all__ = [
    "AssignError", "Containers", "DEFAULT_TIMEOUT", "REPO", "Result", "SOURCES", "answer_stubs", "book_section",
    "boundary", "build", "chapter_for", "chapter_section", "check_sources", "format_result", "grade",
    "grader_zips", "question_points", "questions", "read_source", "read_submission", "score_answer",
    "source_problems", "sources", "student_ids", "write_book_section", "write_reports",
]
