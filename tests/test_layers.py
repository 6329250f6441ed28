"""The layer contract (``[tool.importlinter]`` in pyproject.toml) holds, and it can fail."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the package under ``root/src`` with the repository's contracts."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root / "src"), "HOME": str(root)}
    return subprocess.run([str(LINT), "--config", str(REPO / "pyproject.toml"), "--no-cache"], cwd=root,
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def package_copy(tmp_path):
    shutil.copytree(REPO / "src" / "snrbench", tmp_path / "src" / "snrbench",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_the_contracts_hold(package_copy):
    out = _lint(package_copy)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 kept, 0 broken" in out.stdout


@pytest.mark.parametrize("module, line, broken", [
    # a lower layer importing a higher one (even lazily, inside a function; an upward import also
    # closes a cycle between the two subpackages, so the cycle contract may break too)
    ("core/model.py", "def _oops():\n    from ..report import scoring\n", "layers"),
    ("truth/exact.py", "from ..families import get\n", "layers"),
    # two modules of one package importing each other
    ("families/base.py", "def _oops():\n    from . import exact_rbm\n", "no import cycles"),
    # plotting code in the sampler core
    ("core/sampler.py", "def _oops():\n    import matplotlib\n", "the core imports no file-format"),
])
def test_a_violation_breaks_the_contract(package_copy, module, line, broken):
    path = package_copy / "src" / "snrbench" / module
    path.write_text(path.read_text() + "\n\n" + line)
    out = _lint(package_copy)
    assert out.returncode != 0
    broken_lines = [ln for ln in out.stdout.splitlines() if ln.endswith("BROKEN")]
    assert any(ln.startswith(broken) for ln in broken_lines), out.stdout


def test_the_names_entries_import_are_the_moved_modules():
    """Submitted entries import ``snrbench.{predict,galerkin,pilot,autocorr,spectral}`` and ``snrbench.RBM``:
    each is the module (or class) that now lives in its layer, not a copy."""
    import importlib

    import snrbench
    from snrbench.core import autocorr, model, spectral
    from snrbench.predict import contract, galerkin, pilot

    for old, new in (("galerkin", galerkin), ("pilot", pilot), ("autocorr", autocorr), ("spectral", spectral)):
        assert importlib.import_module(f"snrbench.{old}") is new
    predict = importlib.import_module("snrbench.predict")
    for name in contract.__all__:
        assert getattr(predict, name) is getattr(contract, name)
    assert snrbench.RBM is model.RBM
    from snrbench.spectral import integrated_time, variance_factor  # what predictors/multimode.py imports
    assert integrated_time is spectral.integrated_time and variance_factor is spectral.variance_factor
