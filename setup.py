"""Build hook: the wheel carries the project folders as package data under ``snrbench/_data/``.

The repository keeps ``tasks/``, ``predictors/``, ``results/`` and ``leaderboard/`` at its top level
(where an editable install reads them, :mod:`snrbench.store.locations`); a built wheel gets a copy
of each, so an installed snrbench finds its suite, built-in entries and stored results by itself.
Everything else is declared in ``pyproject.toml``.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PROJECT_FOLDERS = ("tasks", "predictors", "results", "leaderboard")
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".partial", "*.tmp")


class BuildWithProjectData(build_py):
    def run(self):
        super().run()
        here = Path(__file__).resolve().parent
        target = Path(self.build_lib) / "snrbench" / "_data"
        for name in PROJECT_FOLDERS:
            if (here / name).is_dir():
                shutil.rmtree(target / name, ignore_errors=True)
                shutil.copytree(here / name, target / name, ignore=_SKIP)


setup(cmdclass={"build_py": BuildWithProjectData})
