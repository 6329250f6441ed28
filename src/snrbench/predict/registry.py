"""Where leaderboard entries come from: ``predictors/`` (by path), the entry-point group
``snrbench.predictors``, and files given to ``snrbench submit`` (all of them together:
:func:`snrbench.predict.runner.all_entries`, which imports third-party code only in a confined process).

An entry is a class defined in its module with a ``name`` (lower-case letters, digits, ``-``,
``_``, ``.``), an ``access`` tier ("white-box", "model" or "sampler-only") and a ``predict`` method; it is
instantiated with no arguments (hyper-parameters take their defaults). ``(name, access)`` is unique
across all sources; a second source defining the same pair is refused.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from ..store.locations import project_root
from .contract import ACCESS_TIERS

__all__ = ["Entry", "RegistryError", "NAME_RULE", "ENTRY_POINT_GROUP", "predictors_dir", "load_file", "load_entry_point",
           "builtin_entries", "resolve", "instantiate", "no_duplicates"]

ENTRY_POINT_GROUP = "snrbench.predictors"
#: An entry name, matched whole (``fullmatch``: no trailing newline, no path separators).
NAME_RULE = _NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class RegistryError(ValueError):
    """An entry cannot be loaded, is malformed, or clashes with another entry."""


@dataclass(frozen=True)
class Entry:
    """One (name, access) entry: ``source`` is ``path.py::Class`` or ``entrypoint:ep-name``."""

    name: str
    access: str
    source: str
    source_sha256: str

    @property
    def key(self) -> tuple[str, str]:
        return self.name, self.access

    def __str__(self) -> str:
        return f"{self.name} ({self.access})"


def predictors_dir() -> Path:
    """``$SNRBENCH_PREDICTORS`` or ``predictors/`` of the project root (the checkout, or the
    installed package's copy: :func:`snrbench.store.locations.project_root`)."""
    env = os.environ.get("SNRBENCH_PREDICTORS")
    return Path(env) if env else project_root() / "predictors"


def _import_file(path: Path):
    path = Path(path).resolve()
    if not path.is_file() or path.suffix != ".py":
        raise RegistryError(f"{path}: not a Python file (expected PATH.py with a predictor class)")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    mod_name = f"_snrbench_entry_{path.stem}_{digest[:12]}"
    if mod_name in sys.modules:
        return sys.modules[mod_name], digest
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[mod_name]
        raise RegistryError(f"{path}: importing it raised {type(exc).__name__}: {exc}") from None
    return module, digest


def _classes(module) -> list[type]:
    return [obj for obj in vars(module).values()
            if isinstance(obj, type) and obj.__module__ == module.__name__ and callable(getattr(obj, "predict", None))
            and isinstance(getattr(obj, "name", None), str) and getattr(obj, "name", "")]


def _check_class(cls, where: str) -> None:
    if not _NAME.fullmatch(cls.name):
        raise RegistryError(f"{where}: name {cls.name!r} must match {_NAME.pattern} in full")
    if getattr(cls, "access", None) == "black-box":
        raise RegistryError(f"{where}: access 'black-box' is split in two: 'sampler-only' (states and "
                            "observables from a sampler in another process) or 'model' (also the parameters "
                            "and data; mnist families only)")
    if getattr(cls, "access", None) not in ACCESS_TIERS:
        raise RegistryError(f"{where}: access {getattr(cls, 'access', None)!r} must be one of {ACCESS_TIERS}")


def load_file(path) -> list[Entry]:
    """Entries defined in one Python file (each class with name, access and predict)."""
    path = Path(path).resolve()
    module, digest = _import_file(path)
    classes = _classes(module)
    if not classes:
        raise RegistryError(f"{path}: defines no predictor class (a class with `name`, `access` and `predict`)")
    out = []
    for cls in classes:
        _check_class(cls, f"{path}::{cls.__qualname__}")
        out.append(Entry(cls.name, cls.access, f"{path}::{cls.__qualname__}", digest))
    return no_duplicates(out)


def load_entry_point(ep_name: str) -> list[Entry]:
    """Entries from the installed entry point ``ep_name`` of group ``snrbench.predictors``."""
    eps = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if ep_name not in eps:
        raise RegistryError(f"no entry point {ep_name!r} in group {ENTRY_POINT_GROUP!r} (installed: {sorted(eps)})")
    obj = eps[ep_name].load()
    classes = [obj] if isinstance(obj, type) else _classes(obj)
    if not classes:
        raise RegistryError(f"entry point {ep_name!r}: loads no predictor class")
    out = []
    for cls in classes:
        _check_class(cls, f"entry point {ep_name}")
        src = sys.modules[cls.__module__].__file__
        digest = hashlib.sha256(Path(src).read_bytes()).hexdigest() if src else ""
        out.append(Entry(cls.name, cls.access, f"entrypoint:{ep_name}:{cls.__qualname__}", digest))
    return out


def no_duplicates(entries: list[Entry]) -> list[Entry]:
    seen: dict[tuple[str, str], Entry] = {}
    for e in entries:
        if e.key in seen and seen[e.key].source != e.source:
            raise RegistryError(f"duplicate entry {e}: defined by {seen[e.key].source} and by {e.source}; "
                                "names are unique per access tier")
        seen[e.key] = e
    return list(seen.values())


def builtin_entries() -> list[Entry]:
    """Entries of every ``predictors/*.py``, sorted by (name, access)."""
    entries = []
    for path in sorted(predictors_dir().glob("*.py")):
        if not path.name.startswith("_"):
            entries += load_file(path)
    return sorted(no_duplicates(entries), key=lambda e: e.key)


def resolve(spec: str) -> list[Entry]:
    """``PATH.py`` or an entry-point name → its entries."""
    if spec.endswith(".py") or os.sep in spec:
        return load_file(spec)
    return load_entry_point(spec)


def instantiate(entry: Entry):
    """A fresh instance of the entry's class (in the current process)."""
    if entry.source.startswith("entrypoint:"):
        _, ep_name, qual = entry.source.split(":", 2)
        obj = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}[ep_name].load()
        cls = obj if isinstance(obj, type) else getattr(obj, qual)
    else:
        path, qual = entry.source.rsplit("::", 1)
        module, _ = _import_file(Path(path))
        cls = getattr(module, qual)
    return cls()
