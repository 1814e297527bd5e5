"""Automatic checks for the chapters' exercises.

An exercise cell holds ``answer = None``; the reader replaces ``None`` with code and runs
the check. An unanswered exercise only prints a reminder (so the executed book and its
tests run through); a wrong answer fails with a hint; a right one says so.
"""

from __future__ import annotations

import math

import torch


def _close(a, b, rel: float, abs_: float) -> bool:
    if torch.is_tensor(a) or torch.is_tensor(b):
        a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
        return a.shape == b.shape and torch.allclose(a, b, rtol=rel, atol=abs_)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)
    return a == b


def check(name: str, answer, expected, rel: float = 1e-4, abs_: float = 1e-6, hint: str = ""):
    """Compare ``answer`` with ``expected``; None means not answered yet."""
    if answer is None:
        print(f"{name}: not answered yet. Replace `None` above with your code and run the cell again.")
        return None
    if _close(answer, expected, rel, abs_):
        print(f"{name}: correct.")
        return True
    raise AssertionError(f"{name}: not quite (got {answer!r}). {hint}".strip())
