"""Suite specs: TOML files in ``tasks/`` expanded into content-hashed cells.

A cell is its spec (a flat dict of JSON scalars). ``cell_id`` is the first 16 hex digits of the
SHA-256 of the canonical JSON of that spec, so a changed cell is a new cell. The model and data
of a cell are pure functions of the spec (seeded numpy ``Generator``s); the model's parameter hash
is stored beside its results so a change in the random streams would be detected.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .ising import IsingModel
from .model import RBM

__all__ = ["TaskSpecError", "Cell", "load_suite", "suite_path", "build_model", "build_data", "t_grid", "FAMILIES",
           "EXACT_FAMILIES", "MNIST_FAMILIES"]

FAMILIES = ("exact-rbm", "planted", "ising", "mnist", "mnist-large")
#: Families whose ground truth is exact (their cells give white-box entries ``problem.exact``).
EXACT_FAMILIES = ("exact-rbm", "planted", "ising")
_RECIPES = {"exact-rbm": ("mattis+disorder",), "planted": ("planted",), "ising": ("ising",), "mnist": ("pcd",),
            "mnist-large": ("pcd",)}
#: Families of RBMs trained on MNIST (checkpoints in ``tasks/<checkpoints>/``; Monte Carlo ground truth).
MNIST_FAMILIES = ("mnist", "mnist-large")
#: Ising models (grid key ``models``) and their short names in labels.
ISING_MODELS = {"curie-weiss": "cw", "sk": "sk", "hopfield2": "hop2"}
_OBSERVABLES = {"exact-rbm": ("weights", "weights+biases"), "planted": ("weights", "weights+biases"),
                "ising": ("pairs",), "mnist": ("weights", "weights+biases"), "mnist-large": ("weights", "weights+biases")}


class TaskSpecError(ValueError):
    """A malformed suite spec; the message names the file and the offending key."""


def tasks_dir() -> Path:
    """The suite folder: ``$SNRBENCH_TASKS`` or ``tasks/`` at the repository root."""
    import os

    env = os.environ.get("SNRBENCH_TASKS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "tasks"


def suite_path(family: str) -> Path:
    return tasks_dir() / f"{family}.toml"


@dataclass(frozen=True)
class Cell:
    """One model + data + estimator setting of a family."""

    spec_json: str

    @property
    def spec(self) -> dict:
        return json.loads(self.spec_json)

    @property
    def cell_id(self) -> str:
        return hashlib.sha256(self.spec_json.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        s = self.spec
        if s["family"] in MNIST_FAMILIES:
            return f"m{s['n_hidden']}-u{s['update']}"
        if s["family"] == "ising":
            return f"{ISING_MODELS[s['model']]}-N{s['n_visible']}-b{s['beta']:g}-s{s['seed']}"
        if s["recipe"] == "planted":
            kind = "ferro" if s["control"] else f"M{s['patterns']}"
        else:
            kind = "sym" if s["symmetric"] else "bias"
        return f"n{s['n_visible']}m{s['n_hidden']}-b{s['beta']:g}-{kind}-s{s['seed']}"

    @classmethod
    def from_spec(cls, spec: dict) -> "Cell":
        return cls(json.dumps(spec, sort_keys=True, separators=(",", ":")))


def _need(table: dict, key: str, kind, where: str):
    if key not in table:
        raise TaskSpecError(f"{where}: missing key {key!r}")
    val = table[key]
    if not isinstance(val, kind) or isinstance(val, bool) and kind is not bool:
        raise TaskSpecError(f"{where}: {key!r} must be {getattr(kind, '__name__', kind)}, got {val!r}")
    return val


def load_suite(family_or_path: str | Path) -> tuple[dict, list[Cell]]:
    """Read a suite TOML; return ``(header, cells)``. Raises :class:`TaskSpecError` on bad specs."""
    path = Path(family_or_path)
    if path.suffix != ".toml":
        if str(family_or_path) not in FAMILIES:
            raise TaskSpecError(f"unknown family {family_or_path!r}; known: {', '.join(FAMILIES)}")
        path = suite_path(str(family_or_path))
    if not path.is_file():
        raise TaskSpecError(f"suite spec not found: {path}")
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise TaskSpecError(f"{path}: not valid TOML ({exc})") from None
    where = str(path)
    family = _need(doc, "family", str, where)
    if family not in FAMILIES:
        raise TaskSpecError(f"{where}: unknown family {family!r}")
    if family in MNIST_FAMILIES:
        from .mnist_suite import load_mnist_suite

        return load_mnist_suite(doc, path)
    suite = _need(doc, "suite", str, where)
    grid = _need(doc, "grid", dict, where)
    model = _need(doc, "model", dict, where)
    data = _need(doc, "data", dict, where)
    est = _need(doc, "estimator", dict, where)
    if family == "ising":
        sizes = _need(grid, "sizes", list, f"{where} [grid]")
        if not sizes or not all(isinstance(x, int) and not isinstance(x, bool) and 2 <= x <= 14 for x in sizes):
            raise TaskSpecError(f"{where} [grid]: 'sizes' must be ints in [2, 14] (exact enumeration), got {sizes!r}")
        shapes = [[N, 0] for N in sizes]
    else:
        shapes = _need(grid, "shapes", list, f"{where} [grid]")
    for s in shapes:
        if not (isinstance(s, list) and len(s) == 2 and all(isinstance(x, int) and x >= 0 for x in s)):
            raise TaskSpecError(f"{where} [grid]: each shape must be [n_visible, n_hidden] of positive ints, got {s!r}")
    betas = _need(grid, "betas", list, f"{where} [grid]")
    if not betas or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and b >= 0 for b in betas):
        raise TaskSpecError(f"{where} [grid]: 'betas' must be non-negative numbers, got {betas!r}")
    seeds = _need(grid, "seeds", list, f"{where} [grid]")
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise TaskSpecError(f"{where} [grid]: 'seeds' must be non-negative ints, got {seeds!r}")
    units = _need(model, "units", str, f"{where} [model]")
    if units != "spin":
        raise TaskSpecError(f"{where} [model]: suite v1 uses spin units, got {units!r}")
    recipe = _need(model, "recipe", str, f"{where} [model]")
    if recipe not in _RECIPES[family]:
        raise TaskSpecError(f"{where} [model]: unknown recipe {recipe!r} for {family}; known: {_RECIPES[family]}")
    n_samples = _need(data, "n_samples", int, f"{where} [data]")
    offset = _need(data, "teacher_seed_offset", int, f"{where} [data]")
    if n_samples < 1:
        raise TaskSpecError(f"{where} [data]: 'n_samples' must be ≥ 1")
    observables = _need(est, "observables", str, f"{where} [estimator]")
    if observables not in _OBSERVABLES[family]:
        raise TaskSpecError(f"{where} [estimator]: unknown observables {observables!r} for {family}; "
                            f"known: {_OBSERVABLES[family]}")
    common = dict(suite=suite, family=family, units=units, recipe=recipe, n_data=n_samples, observables=observables)
    cells = []
    if family == "ising":
        models = _need(grid, "models", list, f"{where} [grid]")
        if not models or any(x not in ISING_MODELS for x in models):
            raise TaskSpecError(f"{where} [grid]: 'models' entries must be among {sorted(ISING_MODELS)}, got {models!r}")
        scale = float(_need(data, "teacher_beta_scale", (int, float), f"{where} [data]"))
        for name, (n, _), beta, seed in itertools.product(models, shapes, betas, seeds):
            cells.append(Cell.from_spec(dict(common, model=name, n_visible=n, n_hidden=0, beta=float(beta),
                                             symmetric=True, seed=seed, teacher_seed=seed + offset,
                                             teacher_beta=float(beta) * scale)))
    elif family == "planted":
        patterns = _need(grid, "patterns", list, f"{where} [grid]")
        if not patterns or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in patterns):
            raise TaskSpecError(f"{where} [grid]: 'patterns' must be positive ints, got {patterns!r}")
        control = _need(grid, "ferromagnetic_control", bool, f"{where} [grid]")
        noise = float(_need(model, "noise", (int, float), f"{where} [model]"))
        kinds = [(M, False) for M in patterns] + ([(1, True)] if control else [])
        for (n, m), beta, (M, ctrl), seed in itertools.product(shapes, betas, kinds, seeds):
            cells.append(Cell.from_spec(dict(common, n_visible=n, n_hidden=m, beta=float(beta), symmetric=True,
                                             seed=seed, patterns=M, control=ctrl, noise=noise,
                                             teacher_seed=seed + offset)))
    else:
        syms = _need(grid, "symmetries", list, f"{where} [grid]")
        if not syms or any(s not in ("symmetric", "biased") for s in syms):
            raise TaskSpecError(f"{where} [grid]: 'symmetries' entries must be 'symmetric' or 'biased', got {syms!r}")
        disorder = float(_need(model, "disorder", (int, float), f"{where} [model]"))
        bias_std = float(_need(model, "bias_std", (int, float), f"{where} [model]"))
        for (n, m), beta, sym, seed in itertools.product(shapes, betas, syms, seeds):
            cells.append(Cell.from_spec(dict(common, n_visible=n, n_hidden=m, beta=float(beta),
                                             symmetric=sym == "symmetric", seed=seed, disorder=disorder,
                                             bias_std=bias_std, teacher_seed=seed + offset)))
    ids = [c.cell_id for c in cells]
    if len(set(ids)) != len(ids):
        raise TaskSpecError(f"{where}: the grid repeats a cell (duplicate entries)")
    header = dict(family=family, suite=suite, description=doc.get("description", ""), path=str(path))
    return header, cells


def _mattis(spec: dict, seed: int) -> tuple[RBM, np.random.Generator]:
    n, m, beta = spec["n_visible"], spec["n_hidden"], spec["beta"]
    rng = np.random.default_rng(seed)
    xi = 2.0 * rng.integers(0, 2, n) - 1.0
    eta = 2.0 * rng.integers(0, 2, m) - 1.0
    G = rng.standard_normal((n, m))
    W = (beta / np.sqrt(n)) * (np.outer(xi, eta) + spec["disorder"] * G)
    a = b = None
    if not spec["symmetric"]:
        a = spec["bias_std"] * rng.standard_normal(n)
        b = spec["bias_std"] * rng.standard_normal(m)
    return RBM(W, a, b, spec["units"]), rng


def _planted(spec: dict, seed: int) -> tuple[RBM, np.random.Generator]:
    """``W = (β/√n)(Σ_{μ≤M} ξ^μ η^μᵀ + noise·G)``, ``ξ^μ, η^μ ∈ {±1}`` (all +1 for the control), a = b = 0."""
    n, m, beta, M = spec["n_visible"], spec["n_hidden"], spec["beta"], spec["patterns"]
    rng = np.random.default_rng(seed)
    if spec["control"]:
        xi, eta = np.ones((1, n)), np.ones((1, m))
    else:
        xi = 2.0 * rng.integers(0, 2, (M, n)) - 1.0
        eta = 2.0 * rng.integers(0, 2, (M, m)) - 1.0
    G = rng.standard_normal((n, m))
    W = (beta / np.sqrt(n)) * (xi.T @ eta + spec["noise"] * G)
    return RBM(W, None, None, spec["units"]), rng


def _ising(spec: dict, seed: int, beta: float) -> tuple[IsingModel, np.random.Generator]:
    """Curie–Weiss ``J = (β/N)(11ᵀ − I)``; SK ``J_ij = β G_ij/√N`` (G symmetric standard normal);
    Hopfield with 2 patterns ``J = (β/N) Σ_μ ξ^μ ξ^μᵀ`` (zero diagonal, ξ ∈ {±1}^N); h = 0."""
    N = spec["n_visible"]
    rng = np.random.default_rng(seed)
    if spec["model"] == "curie-weiss":
        J = np.full((N, N), beta / N)
    elif spec["model"] == "sk":
        G = np.triu(rng.standard_normal((N, N)), 1)
        J = beta * (G + G.T) / np.sqrt(N)
    else:
        xi = 2.0 * rng.integers(0, 2, (2, N)) - 1.0
        J = (beta / N) * (xi.T @ xi)
    np.fill_diagonal(J, 0.0)
    return IsingModel(J), rng


def _recipe(spec: dict, seed: int, teacher: bool = False):
    if spec["family"] == "ising":
        return _ising(spec, seed, spec["teacher_beta"] if teacher else spec["beta"])
    return _planted(spec, seed) if spec["recipe"] == "planted" else _mattis(spec, seed)


def build_model(cell: Cell | dict) -> RBM | IsingModel:
    """The cell's model (recipe ``mattis+disorder``: ``W = (β/√n)(ξηᵀ + disorder·G)``; ``planted``:
    ``W = (β/√n)(Σ_μ ξ^μ η^μᵀ + noise·G)``; ``ising``: see :func:`_ising`), seeded by the cell's seed;
    ``pcd``: the trained checkpoint the spec names, checked against its hash."""
    spec = cell.spec if isinstance(cell, Cell) else cell
    if spec["family"] in MNIST_FAMILIES:
        from .mnist_suite import checkpoint_model

        return checkpoint_model(spec)
    return _recipe(spec, spec["seed"])[0]


def build_data(cell: Cell | dict) -> np.ndarray:
    """``n_data`` exact samples of the teacher (same recipe, seed ``teacher_seed``; Ising: at
    ``teacher_beta``); ``pcd``: the binarized MNIST images the checkpoint was trained on."""
    spec = cell.spec if isinstance(cell, Cell) else cell
    if spec["family"] in MNIST_FAMILIES:
        from .mnist_suite import training_data

        return training_data(spec)
    teacher, rng = _recipe(spec, spec["teacher_seed"], teacher=True)
    return teacher.sample_exact(spec["n_data"], rng)


def t_grid(cell: Cell | dict) -> np.ndarray:
    """The cell's T grid: ``2^0 … 2^16`` (DESIGN §1), or ``2^0 … t_max`` where the spec sets ``t_max``."""
    from .spectral import T_GRID

    spec = cell.spec if isinstance(cell, Cell) else cell
    if "t_max" not in spec:
        return T_GRID.copy()
    return 2 ** np.arange(int(np.log2(spec["t_max"])) + 1, dtype=np.int64)
