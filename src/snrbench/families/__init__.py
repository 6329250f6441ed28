"""Task families as plug-ins.

A family is one :class:`Family` subclass in one module plus one TOML under ``tasks/``: the grid
of cells, the recipe that builds a cell's model and data, its T grid, the entry tiers it offers,
how its ground truth is made, its observables, its summary columns and how its figure labels
cells. Built in: ``exact-rbm`` (:mod:`.exact_rbm`), ``planted`` (:mod:`.planted`), ``ising``
(:mod:`.ising`), ``mnist`` and ``mnist-large`` (:mod:`.mnist`), ``goodhart`` (:mod:`.goodhart`, opt-in:
students trained against a Q forecast); the exact ones share
:class:`ExactFamily` (:mod:`._exact`), the trained-checkpoint ones :mod:`._trained`. An installed package adds a family
through the entry-point group ``snrbench.families``; a script through :func:`register`. A family
declares its suite keys (:attr:`Family.keys`, each a :class:`Key`: kind and range), and
:func:`load_suite` checks every key of the TOML against them before any cell is built.

Nothing outside this package names a family: the jobs, the runner, scoring, the leaderboard and
the command line loop over :func:`all_families` and read the declarations.
"""
from ._exact import ExactFamily
from .base import (BUILTIN_MODULES, ENTRY_POINT_GROUP, Cell, Family, Key, TaskSpecError, all_families, build_data,
                   build_model, default_names, family_of, get, load_suite, names, need, register, suite_path,
                   t_grid, tasks_dir, unregister)

__all__ = ["BUILTIN_MODULES", "ENTRY_POINT_GROUP", "Cell", "ExactFamily", "Family", "Key", "TaskSpecError",
           "all_families", "build_data", "build_model", "default_names", "family_of", "get", "load_suite", "names",
           "need", "register", "suite_path", "t_grid", "tasks_dir", "unregister"]
