"""Publishing a submission all-or-nothing: its predictions, the scores and the leaderboard, or none.

Everything that can fail runs on copies: the results folder is copied into a staging folder beside
it, the new predictions are stored there, scored, verified, and the leaderboard is built from the
copy into a staging folder beside ``out``. Only when all of that succeeded are the changed files
moved into place: those of ``results/`` in one store commit (:func:`snrbench.store.commit_files`:
all of them with the new manifest, or none, even if the process is killed), then the leaderboard's,
then the README's table. A failure at any step before that leaves ``results/``, ``out`` and the
README as they were. Among those steps: ``extra`` stores made elsewhere (a submission's fresh draws)
are copied into the staged results, and ``check`` judges the staged scores; a reason it gives
raises :class:`Rejected` and nothing is published.
"""
from __future__ import annotations

import filecmp
import os
import shutil
import tempfile
from pathlib import Path

from .. import store
from ..families import load_suite
from ..predict import seeds
from ..predict.predictions import store_runs
from ..predict.runner import remove_tree
from . import leaderboard, scoring

__all__ = ["publish", "refuse_damaged", "Rejected"]


class Rejected(ValueError):
    """A submission that ``publish``'s ``check`` refused; ``reasons`` lists why."""

    def __init__(self, reasons: list[str]):
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def refuse_damaged(results: Path) -> None:
    """Raise :class:`snrbench.store.ResultsError` when stored results fail verification."""
    problems = store.verify(results)
    if problems:
        raise store.ResultsError(f"stored results under {results} fail verification ({'; '.join(problems[:3])}); "
                                 "nothing was run or stored: repair them first (snrbench groundtruth, predict)")


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _changed(staged: Path, dest: Path) -> list[str]:
    return [r for r in _files(staged) if not (dest / r).is_file() or not filecmp.cmp(staged / r, dest / r, False)]


def _move_changed(staged: Path, dest: Path) -> list[Path]:
    """Rename every file of ``staged`` that is new or differs into ``dest``."""
    rels = _changed(staged, dest)
    for rel in rels:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged / rel, dest / rel)
    return [dest / r for r in rels]


def publish(results: Path, out: Path, runs: list, families: list[str], readme: Path | None = None,
            extra: dict[str, Path] | None = None, check=None, key: bytes | None = None) -> list[Path]:
    """Store ``runs`` (every cell succeeded) and the stores ``extra`` (relative path in ``results`` →
    folder), score, ask ``check(staged scores)`` (a list of reasons to refuse; :class:`Rejected`),
    build the leaderboard in ``out`` and update ``readme``'s table, all or nothing (see the module
    doc); returns the files written. ``key``: the sampler key the runs were seeded with
    (:mod:`snrbench.predict.seeds`), stored with them where ``results`` has none yet."""
    results, out = Path(results), Path(out)
    refuse_damaged(results)
    if any(r.failures for r in runs):
        raise ValueError("refusing to publish runs with failed cells")
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".publish-", dir=results.parent))
    stage_out = Path(tempfile.mkdtemp(prefix=".publish-", dir=out.parent))
    try:
        staged = stage / "results"
        shutil.copytree(results, staged)
        if key is not None and seeds.store_key(staged, key) != key:
            raise ValueError(f"the runs were seeded with another sampler key than {results / seeds.KEY_NAME}")
        for family in families:
            mine = [r for r in runs if r.family == family]
            if mine:
                store_runs(staged, mine, load_suite(family)[0]["suite"])
        for rel, folder in (extra or {}).items():
            shutil.copytree(folder, staged / rel)
        scoring.score(staged)
        reasons = check(store.read_table(staged, scoring.SCORES_REL).to_pandas()) if check else []
        if reasons:
            raise Rejected(reasons)
        problems = store.verify(staged)
        if problems:
            raise store.ResultsError(f"the staged results fail verification: {problems[:3]}")
        leaderboard.build(staged, stage_out, results_link=leaderboard.results_href(results, out))
        table = leaderboard.markdown_overall(staged)
        written = store.commit_files(results, {r: staged / r for r in _changed(staged, results)})
        written += _move_changed(stage_out, out)
        if readme is not None and leaderboard.update_readme(readme, table):
            written.append(Path(readme))
        return written
    finally:
        remove_tree(stage)
        remove_tree(stage_out)
