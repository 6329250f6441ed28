"""The family abstraction, cells, suite specs and the family registry.

A **family** is a kind of task: a grid of cells declared in one TOML file under ``tasks/``, a
recipe that turns a cell's spec into a model and data, the entry tiers it offers, how its ground
truth is made, its observables, and how its summary and figure read. Each family is one class
(a :class:`Family` subclass) in one module of :mod:`snrbench.families`, plus its TOML; an
installed package adds one through the entry-point group ``snrbench.families``.

A **cell** is its spec (a flat dict of JSON scalars). ``cell_id`` is the first 16 hex digits of the
SHA-256 of the canonical JSON of that spec, so a changed cell is a new cell. The model and data
of a cell are pure functions of the spec (seeded numpy ``Generator``s); the model's parameter hash
is stored beside its results so a change in the random streams would be detected.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import tomllib
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np

from ..core.spectral import T_GRID
from ..store.locations import project_root

__all__ = ["TaskSpecError", "Cell", "Family", "need", "tasks_dir", "register", "unregister", "get", "names",
           "all_families", "default_names", "family_of", "load_suite", "suite_path", "build_model", "build_data",
           "t_grid", "ENTRY_POINT_GROUP", "BUILTIN_MODULES"]

#: Entry-point group through which an installed package adds families (a Family instance, a
#: Family subclass, or a list of either).
ENTRY_POINT_GROUP = "snrbench.families"
#: The built-in family modules of :mod:`snrbench.families`, in registry order.
BUILTIN_MODULES = ("exact_rbm", "planted", "ising", "mnist")


class TaskSpecError(ValueError):
    """A malformed suite spec; the message names the file and the offending key."""


def tasks_dir() -> Path:
    """The suite folder: ``$SNRBENCH_TASKS`` or ``tasks/`` of the project root
    (:func:`snrbench.store.locations.project_root`: the checkout, or the installed package's copy)."""
    env = os.environ.get("SNRBENCH_TASKS")
    if env:
        return Path(env)
    return project_root() / "tasks"


def need(table: dict, key: str, kind, where: str):
    """``table[key]``, checked to be of type ``kind``; TaskSpecError naming ``where`` and the key."""
    if key not in table:
        raise TaskSpecError(f"{where}: missing key {key!r}")
    val = table[key]
    if not isinstance(val, kind) or isinstance(val, bool) and kind is not bool:
        raise TaskSpecError(f"{where}: {key!r} must be {getattr(kind, '__name__', kind)}, got {val!r}")
    return val


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
    def family(self) -> "Family":
        return get(self.spec["family"])

    @property
    def label(self) -> str:
        return self.family.label(self.spec)

    @classmethod
    def from_spec(cls, spec: dict) -> "Cell":
        return cls(json.dumps(spec, sort_keys=True, separators=(",", ":")))


class Family:
    """A task family; subclasses set the class attributes and implement the methods below.

    Attributes
    ----------
    name : the family key (the TOML's ``family``, the results' file names).
    suite_file : the TOML under :func:`tasks_dir` (default ``<name>.toml``).
    default : part of the default suite (``snrbench run`` without ``--family``).
    tiers : the entry tiers scored on it ("white-box" needs an exact operator).
    method, precision : how its ground truth is made (stored in every file's metadata).
    tables : schema table name → file suffix of its ground-truth tables; the first is the curves.
    observables : the ``[estimator] observables`` values it accepts.
    parallel : whether cells may run in parallel worker processes (False: each uses every core).
    ladder : whether the Monte Carlo ladder check (exact curve vs Monte Carlo) applies.
    onset : whether its cells are checkpoints along training (plateau onset scored).
    summary_columns : the columns ``snrbench summary`` prints, in order.
    """

    name: str = ""
    suite_file: str = ""
    default: bool = True
    tiers: tuple[str, ...] = ("sampler-only",)
    method: str = ""
    precision: str = ""
    tables: dict[str, str] = {}
    observables: tuple[str, ...] = ()
    parallel: bool = True
    ladder: bool = False
    onset: bool = False
    summary_columns: tuple[str, ...] = ()
    summary_title: str = "{n} cells"
    #: Whether :meth:`fresh_suite` can draw new cells from the recipe (solved on the fly: exact families).
    fresh_draws: bool = False

    # -- to implement -------------------------------------------------------------------------
    def expand(self, doc: dict, where: str) -> list[dict]:
        """The cell specs of a suite document (its ``family`` and ``suite`` already checked)."""
        raise NotImplementedError

    def label(self, spec: dict) -> str:
        """A cell's human-readable name."""
        raise NotImplementedError

    def build_model(self, spec: dict):
        """The cell's model (an RBM or IsingModel)."""
        raise NotImplementedError

    def build_data(self, spec: dict) -> np.ndarray:
        """The cell's data set, ``(N, n)``."""
        raise NotImplementedError

    def solve_cell(self, cell: Cell) -> dict[str, dict]:
        """Column dicts of every table in :attr:`tables` for one cell."""
        raise NotImplementedError

    def summary(self, root: Path | str):
        """One row per cell of the stored ground truth (a DataFrame)."""
        raise NotImplementedError

    def plot(self, root: Path | str, out: Path | str) -> Path:
        """Write the ground-truth figure of the family to ``out``."""
        raise NotImplementedError

    def fresh_suite(self, text: str, draw: int, where: str) -> str:
        """The suite TOML of fresh draw ``draw``: same grid, new seeds (families with :attr:`fresh_draws`)."""
        raise NotImplementedError(f"family {self.name!r} offers no fresh draws")

    # -- provided -----------------------------------------------------------------------------
    def summary_notes(self, summary) -> str:
        """Text ``snrbench summary`` prints after the family's table (none by default)."""
        return ""

    def t_grid(self, spec: dict) -> np.ndarray:
        """The cell's T grid: ``2^0 … 2^16`` (DESIGN §1), or ``2^0 … t_max`` where the spec sets ``t_max``."""
        if "t_max" not in spec:
            return T_GRID.copy()
        return 2 ** np.arange(int(np.log2(spec["t_max"])) + 1, dtype=np.int64)

    def suite_path(self) -> Path:
        return tasks_dir() / (self.suite_file or f"{self.name}.toml")

    def truth_paths(self) -> tuple[str, ...]:
        """Relative paths under ``results/`` of the ground-truth tables, in the order of :attr:`tables`."""
        return tuple(f"ground_truth/{self.name}{suffix}.parquet" for suffix in self.tables.values())

    def check_observables(self, est: dict, where: str) -> str:
        observables = need(est, "observables", str, f"{where} [estimator]")
        if observables not in self.observables:
            raise TaskSpecError(f"{where} [estimator]: unknown observables {observables!r} for {self.name}; "
                                f"known: {self.observables}")
        return observables

    def __repr__(self) -> str:
        return f"<family {self.name}>"


# -- the registry -----------------------------------------------------------------------------
_REGISTRY: dict[str, Family] = {}
_LOADED = [False]


def register(family: Family, replace: bool = False) -> Family:
    """Add ``family`` (an instance) to the registry; a second family of the same name is refused."""
    if isinstance(family, type):
        family = family()
    if not isinstance(family, Family) or not family.name:
        raise TypeError(f"register() needs a Family instance with a name, got {family!r}")
    old = _REGISTRY.get(family.name)
    if old is not None and old is not family and not replace:
        raise ValueError(f"family {family.name!r} is already registered ({type(old).__module__}."
                         f"{type(old).__qualname__})")
    _REGISTRY[family.name] = family
    return family


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def _load() -> None:
    if _LOADED[0]:
        return
    _LOADED[0] = True
    for mod in BUILTIN_MODULES:
        for fam in importlib.import_module(f"{__package__}.{mod}").FAMILIES:
            register(fam)
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        obj = ep.load()
        for fam in obj if isinstance(obj, (list, tuple)) else [obj]:
            register(fam)


def all_families() -> list[Family]:
    """Every registered family: the built-ins in :data:`BUILTIN_MODULES` order, then the others."""
    _load()
    return list(_REGISTRY.values())


def names() -> list[str]:
    return [f.name for f in all_families()]


def get(name: str) -> Family:
    """The registered family ``name``; TaskSpecError listing the known ones otherwise."""
    _load()
    if name not in _REGISTRY:
        raise TaskSpecError(f"unknown family {name!r}; known: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def default_names() -> list[str]:
    """The default suite: families marked ``default`` whose suite file exists."""
    return [f.name for f in all_families() if f.default and f.suite_path().is_file()]


def family_of(cell: Cell | dict) -> Family:
    spec = cell.spec if isinstance(cell, Cell) else cell
    return get(spec["family"])


# -- suites -----------------------------------------------------------------------------------
def suite_path(family: str) -> Path:
    return get(family).suite_path()


def load_suite(family_or_path: str | Path) -> tuple[dict, list[Cell]]:
    """Read a suite TOML (a family name or a path); return ``(header, cells)``.

    Raises :class:`TaskSpecError` on bad specs, naming the file and the key."""
    path = Path(family_or_path)
    if path.suffix != ".toml":
        path = get(str(family_or_path)).suite_path()
    if not path.is_file():
        raise TaskSpecError(f"suite spec not found: {path}")
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise TaskSpecError(f"{path}: not valid TOML ({exc})") from None
    where = str(path)
    name = need(doc, "family", str, where)
    _load()
    if name not in _REGISTRY:
        raise TaskSpecError(f"{where}: unknown family {name!r}")
    family = _REGISTRY[name]
    need(doc, "suite", str, where)
    cells = [Cell.from_spec(spec) for spec in family.expand(doc, where)]
    ids = [c.cell_id for c in cells]
    if len(set(ids)) != len(ids):
        raise TaskSpecError(f"{where}: the grid repeats a cell (duplicate entries)")
    header = dict(family=name, suite=doc["suite"], description=doc.get("description", ""), path=str(path))
    return header, cells


def build_model(cell: Cell | dict):
    """The cell's model, by its family's recipe."""
    spec = cell.spec if isinstance(cell, Cell) else cell
    return family_of(spec).build_model(spec)


def build_data(cell: Cell | dict) -> np.ndarray:
    """The cell's data set, by its family's recipe."""
    spec = cell.spec if isinstance(cell, Cell) else cell
    return family_of(spec).build_data(spec)


def t_grid(cell: Cell | dict) -> np.ndarray:
    """The cell's T grid (sweeps)."""
    spec = cell.spec if isinstance(cell, Cell) else cell
    return family_of(spec).t_grid(spec)
