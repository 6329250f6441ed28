"""Where snrbench finds its suite, its built-in entries and its stored results.

The project root holds ``tasks/`` (suite specs and shipped checkpoints), ``predictors/`` (the
built-in entries), ``results/`` (stored ground truth, predictions, scores) and ``leaderboard/``.
It is, in this order:

1. ``$SNRBENCH_ROOT`` (the command line's ``snrbench --root DIR`` sets it);
2. the repository, when snrbench runs from a checkout (an editable install);
3. the copy inside the installed package, ``snrbench/_data/`` (a wheel carries all four folders).

``$SNRBENCH_TASKS`` and ``$SNRBENCH_PREDICTORS`` still override the two folders one by one.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["project_root", "packaged_root", "repository_root", "ROOT_ENV"]

ROOT_ENV = "SNRBENCH_ROOT"
_FOLDERS = ("tasks", "predictors")


def repository_root() -> Path | None:
    """The checkout this module runs from (``src/snrbench/store/`` three levels down), or None."""
    root = Path(__file__).resolve().parents[3]
    if (root / "pyproject.toml").is_file() and all((root / f).is_dir() for f in _FOLDERS):
        return root
    return None


def packaged_root() -> Path:
    """The project folders shipped inside the installed package (``snrbench/_data``)."""
    return Path(__file__).resolve().parents[1] / "_data"


def project_root() -> Path:
    """``$SNRBENCH_ROOT``, else the repository, else the packaged copy (module docstring)."""
    env = os.environ.get(ROOT_ENV)
    if env:
        root = Path(env)
        if not root.is_dir():
            raise FileNotFoundError(f"{ROOT_ENV}={env}: no such folder")
        return root
    return repository_root() or packaged_root()
