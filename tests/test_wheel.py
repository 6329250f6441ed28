"""The built wheel works on its own: installed into a fresh venv outside the repository, run from an
empty folder, it finds its suite, its built-in entries and its stored results (snrbench/_data/)."""
import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(cmd, cwd, env, timeout=900):
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{cmd}: rc {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout + out.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv python, wheel) with the wheel built from a copy of the checkout's files and installed
    into a fresh venv; the dependencies come from this venv's site-packages by a path line (so no
    download), never snrbench itself (the editable install's finder is not loaded from there)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split("\n")
    for rel in filter(None, files):
        if (REPO / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_bytes((REPO / rel).read_bytes())
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), "."],
         src, env)
    wheel = next((tmp / "dist").glob("snrbench-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "_deps_from_dev_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", str(wheel)], tmp, env)
    return py, wheel


@pytest.fixture(scope="module")
def installed_for_users(installed, tmp_path_factory):
    """The same wheel in a second fresh venv that sees only what ``pip install 'snrbench[sklearn]'``
    installs (:func:`_only_the_wheels_requirements`), as a user's venv would."""
    _, wheel = installed
    tmp = tmp_path_factory.mktemp("wheel_user")
    venv = tmp / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    deps = _only_the_wheels_requirements(wheel, tmp / "deps", extras={"sklearn"})
    (site / "_deps_of_the_wheel.pth").write_text(f"{deps}\n")
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", str(wheel)], tmp, env)
    return py


def _only_the_wheels_requirements(wheel: Path, into: Path, extras: set[str]) -> Path:
    """A folder of links to exactly the distributions that ``pip install 'WHEEL[extras]'`` would
    install (the closure of the wheel's Requires-Dist under ``extras``), taken from this venv's
    site-packages, so nothing is downloaded and nothing else (e.g. the dev extra) is importable."""
    import zipfile
    from importlib.metadata import distribution

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    meta = next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".dist-info/METADATA"))
    lines = zipfile.ZipFile(wheel).read(meta).decode().splitlines()
    todo = [(Requirement(v.split(":", 1)[1].strip()), extras) for v in lines if v.startswith("Requires-Dist:")]
    seen, into = {}, Path(into)
    into.mkdir()
    while todo:
        req, active = todo.pop()
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in (active | {""})):
            continue
        key = canonicalize_name(req.name)
        if key in seen:
            continue
        seen[key] = dist = distribution(req.name)
        todo += [(Requirement(r), set(req.extras)) for r in dist.requires or []]
        for top in {Path(str(f)).parts[0] for f in dist.files or []} - {"..", "__pycache__"}:
            src = Path(dist.locate_file(top))
            if src.exists() and not (into / top).exists():
                (into / top).symlink_to(src)
    assert "scikit-learn" in seen and "joblib" in seen and "pytest" not in seen, sorted(seen)
    return into


def test_the_wheel_carries_the_project_folders(installed):
    import zipfile

    _, wheel = installed
    names = zipfile.ZipFile(wheel).namelist()
    for f in ("tasks/exact-rbm.toml", "tasks/mnist/m016-u00000.npz", "predictors/pilot_q.py",
              "results/manifest.json", "results/ground_truth/exact-rbm.parquet", "leaderboard/README.md"):
        assert f"snrbench/_data/{f}" in names, f


def test_installed_package_runs_from_an_empty_folder(installed, tmp_path, rng, readme_example):
    py, _ = installed
    snr = str(py.parent / "snrbench")
    here = tmp_path / "empty"
    here.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNRBENCH_") and k != "PYTHONPATH"}
    where = _run([py, "-c", "import snrbench, snrbench.store.locations as l; print(snrbench.__file__); "
                  "print(l.project_root())"], here, env).split()
    assert str(REPO) not in where[0] and where[1].endswith("snrbench/_data")
    from snrbench import __version__

    assert _run([snr, "--version"], here, env).strip() == f"snrbench {__version__}"
    assert "all files under" in _run([snr, "verify"], here, env)
    assert "48 cells" in _run([snr, "summary", "--family", "exact-rbm"], here, env)
    # diagnose: a small model in a plain .npz, and data beside it
    W = rng.normal(0, 0.5, (8, 4))
    np.savez(here / "model.npz", W=W, a=np.zeros(8), b=np.zeros(4))
    np.save(here / "data.npy", (rng.random((200, 8)) < 0.5) * 1.0)
    diag = json.loads(_run([snr, "diagnose", "model.npz", "--data", "data.npy", "--json", "--t-max", "64"], here, env))
    assert diag["models"][0]["curve"]["T"][-1] == 64 and diag["models"][0]["best"]["chains"] >= 1
    # submit the README's example on the packaged suite's exact-rbm family (lowest budget: fast)
    # (renamed: the repository's own copy already stores "trace-iat", and a name belongs to its file)
    (here / "my_predictor.py").write_text(readme_example.replace('"trace-iat"', '"trace-iat-wheel"'))
    out = _run([snr, "submit", "my_predictor.py", "--family", "exact-rbm", "--budget", "65536", "--workers", "2",
                "--quiet"], here, env)
    assert "copied the stored results" in out and "submit: trace-iat-wheel (sampler-only) stored" in out
    assert (here / "results" / "predictions" / "trace-iat-wheel.parquet").is_file()
    assert "trace-iat-wheel" in (here / "leaderboard" / "README.md").read_text()
    assert not re.search(r"suite spec not found", out)
    shipped = Path(where[1]) / "results" / "predictions" / "trace-iat-wheel.parquet"
    assert not shipped.exists()  # the package's own copy is never written


def _readme_diagnose_section() -> str:
    text = (REPO / "README.md").read_text()
    begin = text.index("\n## Diagnose your own model\n")
    return text[begin:text.index("\n## ", begin + 5)]


def test_readme_diagnose_examples_run_from_the_wheel(installed_for_users, tmp_path, rng):
    """Every command and the Python block of the README's "Diagnose your own model" section, run by
    the installed wheel with only its requirements and the documented ``sklearn`` extra, on tiny
    files of the names the README uses (a fitted scikit-learn BernoulliRBM, an rbms archive)."""
    import h5py
    import joblib
    from sklearn.neural_network import BernoulliRBM

    py = installed_for_users
    section = _readme_diagnose_section()
    blocks = re.findall(r"```(bash|python)\n(.*?)```", section, re.S)
    commands = [ln.split("#")[0].strip() for lang, b in blocks if lang == "bash" for ln in b.splitlines()]
    commands = [c for c in commands if c.startswith("snrbench ")]
    python = [b for lang, b in blocks if lang == "python"]
    assert len(commands) >= 3 and len(python) == 1
    here = tmp_path / "user"
    here.mkdir()
    x = (rng.random((300, 12)) < 0.3) * 1.0
    np.save(here / "train.npy", x)
    joblib.dump(BernoulliRBM(n_components=4, n_iter=3, random_state=0).fit(x), here / "model.joblib")
    with h5py.File(here / "train.h5", "w") as f:
        f["samples"] = x
    with h5py.File(here / "run.h5", "w") as f:
        hp = f.create_group("hyperparameters")
        hp["num_chains"], hp["gibbs_steps"] = 20, 2
        for u, s in ((1, 0.1), (10, 1.0), (100, 2.0)):
            p = f.create_group(f"update_{u}").create_group("params")
            p["weight_matrix"], p["vbias"], p["hbias"] = rng.normal(0, s, (12, 4)), np.zeros(12), np.zeros(4)
        f["model_type"] = "BBRBM"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNRBENCH_") and k != "PYTHONPATH"}
    env["PATH"] = f"{py.parent}:{env['PATH']}"
    for cmd in commands:
        out = _run(cmd.split() + ["--quiet"], here, env)
        if "--json" in cmd:
            assert json.loads(out)["verdict"]
        else:
            assert out.startswith("# snrbench diagnosis\n\n**") and "trainable" in out.split("\n")[2], out[:500]
    assert (here / "diag.md").is_file() and (here / "diag.png").is_file()
    out = _run([py, "-c", python[0]], here, env)
    assert "Along the 3 saved updates" in out
