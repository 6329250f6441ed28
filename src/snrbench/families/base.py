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

import difflib
import hashlib
import importlib
import json
import math
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np

from ..core.spectral import T_GRID
from ..store.locations import project_root

__all__ = ["TaskSpecError", "Key", "Cell", "Family", "need", "check_table", "tasks_dir", "register", "unregister",
           "get", "names", "all_families", "default_names", "family_of", "load_suite", "suite_path", "build_model",
           "build_data", "t_grid", "ENTRY_POINT_GROUP", "BUILTIN_MODULES"]

#: Entry-point group through which an installed package adds families (a Family instance, a
#: Family subclass, or a list of either).
ENTRY_POINT_GROUP = "snrbench.families"
#: The built-in family modules of :mod:`snrbench.families`, in registry order.
BUILTIN_MODULES = ("exact_rbm", "planted", "ising", "mnist", "goodhart")


class TaskSpecError(ValueError):
    """A malformed suite spec; the message names the file and the offending key."""


def tasks_dir() -> Path:
    """The suite folder: ``$SNRBENCH_TASKS`` or ``tasks/`` of the project root
    (:func:`snrbench.store.locations.project_root`: the checkout, or the installed package's copy)."""
    env = os.environ.get("SNRBENCH_TASKS")
    if env:
        return Path(env)
    return project_root() / "tasks"


def _did_you_mean(word: str, options) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``options`` to ``word`` (difflib), else ``""``."""
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def need(table: dict, key: str, kind, where: str):
    """``table[key]``, checked to be of type ``kind``; TaskSpecError naming ``where`` and the key
    (a missing key names a close key that is there, a likely typo)."""
    if key not in table:
        close = difflib.get_close_matches(key, [str(k) for k in table], n=1)
        raise TaskSpecError(f"{where}: missing key {key!r}" + (f" (found {close[0]!r}: a typo?)" if close else ""))
    val = table[key]
    if not isinstance(val, kind) or isinstance(val, bool) and kind is not bool:
        raise TaskSpecError(f"{where}: {key!r} must be {getattr(kind, '__name__', kind)}, got {val!r}")
    return val


@dataclass(frozen=True)
class Key:
    """The rule of one suite key, declared in :attr:`Family.keys` and checked by :meth:`Family.check_spec`.

    ``kind`` is ``int``, ``float`` (an int is accepted; NaN and ±inf never are), ``str``, ``bool``
    or ``list`` (non-empty; every entry obeys ``item``; ``length`` fixes its length). A bool is never
    a number. Numbers lie in ``[lo, hi]`` (an end is open where ``lo_open``/``hi_open``); a value with
    ``choices`` is one of them; ``rule(value)`` says why a value that passed the rest is refused
    (a solver's limit, a power of two), or returns None. ``required=False``: the key may be left out.
    ``desc`` replaces the generated description in messages, ``noun`` names a list entry ("shape"),
    ``note`` is appended to a refusal.
    """

    kind: type
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple = ()
    item: "Key | None" = None
    length: int | None = None
    rule: Callable[[object], str | None] | None = None
    required: bool = True
    desc: str = ""
    noun: str = "entry"
    note: str = ""

    def describe(self, plural: bool = False) -> str:
        """What a valid value is, in words ("positive ints", "finite numbers in [0, 1)")."""
        if self.desc:
            return self.desc
        s, a = ("s", "") if plural else ("", "a ")
        if self.kind is list:
            size = f"{self.length} " if self.length else ""
            return f"{'lists' if plural else 'a list'} of {size}{self.item.describe(plural=True)}"
        if self.choices:
            return "one of " + ", ".join(map(repr, self.choices))
        if self.kind is int:
            if self.lo is not None and self.hi is None and self.lo in (0, 1) and not self.lo_open:
                return a + ("positive" if self.lo == 1 else "non-negative") + f" int{s}"
            return ("" if plural else "an ") + f"int{s}" + self._bounds()
        if self.kind is float:
            if self.lo == 0 and self.hi is None and not self.lo_open:
                return f"{a}finite non-negative number{s}"
            return f"{a}finite number{s}" + self._bounds()
        return {str: "strings" if plural else "a string", bool: "true or false",
                dict: "tables" if plural else "a table"}.get(self.kind, getattr(self.kind, "__name__", str(self.kind)))

    def _bounds(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f" in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f" {'>' if self.lo_open else '≥'} {self.lo:g}"
        if self.hi is not None:
            return f" {'<' if self.hi_open else '≤'} {self.hi:g}"
        return ""

    def fits(self, val) -> bool:
        """Whether ``val`` has the kind and lies in the range (choices and rule aside)."""
        if isinstance(val, bool) and self.kind is not bool:
            return False
        if self.kind is float:
            if not isinstance(val, (int, float)):
                return False
            try:
                if not math.isfinite(val):
                    return False
            except OverflowError:
                return False
        elif not isinstance(val, self.kind):
            return False
        if self.kind in (int, float):
            if self.lo is not None and (val < self.lo or self.lo_open and val == self.lo):
                return False
            if self.hi is not None and (val > self.hi or self.hi_open and val == self.hi):
                return False
        return True

    def _ok(self, val) -> bool:
        """Kind, range, length and choices, nested lists included (rules aside)."""
        if self.kind is list:
            return (isinstance(val, list) and bool(val) and (self.length is None or len(val) == self.length)
                    and all(self.item._ok(x) for x in val))
        return self.fits(val) and (not self.choices or val in self.choices)

    def _refuse(self, val, key: str, loc: str, family: str, whole=None) -> str:
        """The message for a value that is not :meth:`_ok` (``whole``: the list it is an entry of)."""
        note = f" ({self.note})" if self.note else ""
        if self.fits(val) and self.choices:
            return (f"{loc}: unknown {key} {val!r} for {family}; {key} must be one of: "
                    f"{', '.join(map(str, self.choices))}{_did_you_mean(val, self.choices)}{note}")
        if whole is not None:
            return f"{loc}: {key!r} must be {self.describe(plural=True)}, got {whole!r}{note}"
        return f"{loc}: {key!r} must be {self.describe()}, got {val!r}{note}"

    def check(self, val, key: str, loc: str, family: str) -> None:
        """Raise TaskSpecError naming ``loc`` (the file and table) and ``key`` unless ``val`` obeys the
        rule. A list of scalars is named whole, a list of lists (shapes) by its bad entry; ``rule``s
        (of the value, and of each entry of a list) run last, so a malformed value is reported as such."""
        entries = []
        if self.kind is not list:
            if not self._ok(val):
                raise TaskSpecError(self._refuse(val, key, loc, family))
        elif not isinstance(val, list) or self.length is not None and len(val) != self.length:
            raise TaskSpecError(f"{loc}: {key!r} must be {self.describe()}, got {val!r}")
        elif not val:
            raise TaskSpecError(f"{loc}: {key!r} must be a non-empty list of {self.item.describe(plural=True)}")
        else:
            entries = val
        for entry in entries:
            if self.item._ok(entry):
                continue
            if self.item.kind is list:
                raise TaskSpecError(f"{loc}: {key!r}: each {self.item.noun} must be {self.item.describe()}, "
                                    f"got {entry!r}")
            raise TaskSpecError(self.item._refuse(entry, key, loc, family, whole=val))
        for entry in entries:
            why = self.item.rule(entry) if self.item.rule else None
            if why:
                raise TaskSpecError(f"{loc}: {key!r} entry {entry!r}: {why}")
        why = self.rule(val) if self.rule else None
        if why:
            raise TaskSpecError(f"{loc}: {key} = {val!r}: {why}")


def check_table(table: dict, keys: dict[str, Key], where: str, name: str, family: str) -> None:
    """Check the TOML table ``name`` of the file ``where`` (``""``: the header) against its declared
    ``keys``: unknown keys first (with a "did you mean"), then missing ones, then each value by its
    :class:`Key`. Every message starts with the file, and names the table and the key."""
    loc, inside = (f"{where} [{name}]", f"[{name}]") if name else (where, "the header")
    for key in table:
        if key not in keys:
            hint = _did_you_mean(key, keys) or f" (known: {', '.join(keys)})"
            raise TaskSpecError(f"{where}: unknown key {key!r} in {inside}{hint}")
    for key, rule in keys.items():
        if key in table:
            rule.check(table[key], key, loc, family)
        elif rule.required:
            raise TaskSpecError(f"{loc}: missing key {key!r}")


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
    ranked : whether its cells count in the tier rankings and the pooled budget ladder (False: a track
        scored and shown on its own, as ``goodhart``, whose models were optimised against entries).
    summary_columns : the columns ``snrbench summary`` prints, in order.
    keys : the suite TOML's declared keys, table name → {key: :class:`Key`}; the header's ``family``,
        ``suite`` and ``description`` are implied. :func:`load_suite` checks every key against them
        (:meth:`check_spec`) before :meth:`expand` runs, which then reads checked values. A family that
        declares none checks its own in :meth:`expand`.
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
    ranked: bool = True
    summary_columns: tuple[str, ...] = ()
    summary_title: str = "{n} cells"
    #: Whether :meth:`fresh_suite` can draw new cells from the recipe (solved on the fly: exact families).
    fresh_draws: bool = False
    keys: dict[str, dict[str, Key]] = {}

    # -- to implement -------------------------------------------------------------------------
    def expand(self, doc: dict, where: str) -> list[dict]:
        """The cell specs of a suite document (already checked by :meth:`check_spec`)."""
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

    def check_spec(self, doc: dict, where: str) -> None:
        """Check a suite document against :attr:`keys` (nothing where the family declares none): the
        header holds ``family``, ``suite``, an optional ``description`` and one table per declared
        table, and each table only its declared keys, each of its kind and in its range (:class:`Key`).
        TaskSpecError naming the file ``where``, the table and the key otherwise."""
        if not self.keys:
            return
        header = dict(family=Key(str), suite=Key(str), description=Key(str, required=False),
                      **{table: Key(dict) for table in self.keys})
        check_table(doc, header, where, "", self.name)
        for table, keys in self.keys.items():
            check_table(doc[table], keys, where, table, self.name)

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
        raise TaskSpecError(f"unknown family {name!r}; known: {', '.join(_REGISTRY)}{_did_you_mean(name, _REGISTRY)}")
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

    Every key is checked against the family's declared :attr:`Family.keys` (kind, range, the exact
    solvers' limits) before any cell is built; :class:`TaskSpecError` on a bad spec, naming the file
    and the key."""
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
        raise TaskSpecError(f"{where}: unknown family {name!r}; known: {', '.join(_REGISTRY)}"
                            f"{_did_you_mean(name, _REGISTRY)}")
    family = _REGISTRY[name]
    need(doc, "suite", str, where)
    family.check_spec(doc, where)
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
