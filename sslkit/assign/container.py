"""Grading in otter's Docker containers (``grade --container``), for code you do not trust.

otter builds one grading image per assignment from its grader zip on top of a base image, and
runs each submission in a fresh container without network. The chapters' tests import sslkit
(and torch), so the base image must hold this repository at ``/opt/sslkit``: the grader zip's
``environment.yml`` is extended to ``pip install /opt/sslkit`` into otter's environment. The
base image is built once per course with ``sslkit/assign/grader.Dockerfile`` (see the
teachers' guide). Results come back as otter's ``GradingResults`` and are reported exactly as
in local grading.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from .results import FAILED, TIMED_OUT, not_graded, otter_outcome, result_from_outcome
from .runtime import AssignError

DEFAULT_IMAGE = "sslkit-grader"
SSLKIT_IN_IMAGE = "/opt/sslkit"
ENVIRONMENT = """name: otter-env
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip
  - jupyter_server
  - pip:
      - otter-grader[grading,plugins]==7.0.0
      - {sslkit}
"""


def container_zip(zip_path: Path, dest: Path, sslkit: str = SSLKIT_IN_IMAGE) -> Path:
    """A copy of a grader zip whose environment installs sslkit from ``sslkit`` (a path in the image)."""
    with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as out:
        for item in src.infolist():
            if item.filename != "environment.yml":
                out.writestr(item, src.read(item.filename))
        out.writestr("environment.yml", ENVIRONMENT.format(sslkit=sslkit))
    return dest


class Containers:
    """What ``grade`` calls to grade in Docker: :meth:`check` before any work, :meth:`prepare`
    once (the images), :meth:`grade` per submission (from several threads)."""

    def __init__(self, image: str = DEFAULT_IMAGE):
        self.base = image
        self.images: dict[str, str] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="sslkit-containers-")

    def check(self) -> None:
        if shutil.which("docker") is None:
            raise AssignError("--container needs Docker (the `docker` command is not installed); "
                              "install Docker or grade without --container")
        info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
        if info.returncode != 0:
            raise AssignError("--container needs a running Docker daemon (`docker info` failed: "
                              f"{(info.stderr.strip().splitlines() or ['no output'])[-1][:160]}); start it, or "
                              "grade without --container")
        if subprocess.run(["docker", "image", "inspect", self.base], capture_output=True).returncode != 0:
            raise AssignError(f"no Docker image {self.base!r}: build it from the repository with `docker build -t "
                              f"{self.base} -f sslkit/assign/grader.Dockerfile .` (or pass --image)")

    def prepare(self, zips: dict[str, Path]) -> None:
        from otter.grade.containers import build_image
        from otter.run import AutograderConfig

        for name, zip_path in zips.items():
            derived = container_zip(zip_path, Path(self._tmp.name) / f"{name}.zip")
            self.images[name] = build_image(str(derived), self.base, name.lower(), AutograderConfig({"debug": False}))

    def grade(self, res, p, zip_path, stubs: dict, timeout: float):
        from otter.grade.containers import grade_submission
        from otter.grade.utils import TimeoutException

        import nbformat

        from .doctests import with_grading_cell

        path = Path(tempfile.mkdtemp(dir=self._tmp.name)) / f"{p.path.stem}.ipynb"  # a zip's notebook too
        nbformat.write(with_grading_cell(p.nb), path)
        results = grade_submission(str(path), self.images[p.assignment], timeout=int(timeout), network=False)
        error = getattr(results, "_catastrophic_error", None)
        if error is not None:
            if isinstance(error, TimeoutException):
                return not_graded(res, TIMED_OUT, f"grading stopped after {timeout:g} s in its container")
            return not_graded(res, FAILED, f"the container could not grade it: {str(error)[:200]}")
        code = {c.source.strip() for c in p.nb.cells if c.cell_type == "code"}
        return result_from_outcome(res, otter_outcome(results, p.nb), stubs, code)
