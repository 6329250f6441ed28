"""The opt-in plateau families trained with k ≥ 4 sweeps per gradient (``mnist-plateau-pcd16``,
``mnist-plateau-pcd32``): each suite parses, every shipped checkpoint matches its hash and the recipe its
TOML names, and the stored ground truth (read through the manifest's checksums) puts the onset
where the recipe was chosen for (DESIGN §3): ``Q_train = C·Q(k)`` falls below 1 inside the grid after
having reached 1, by more than the 95% CIs of both checkpoints, and at the onset ``Q(k)`` is at most
half of ``k·Q(1)`` even at the CI ends, so the forecast needs the chains' autocorrelation.
Nothing here generates anything: it reads the shipped files."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from snrbench import store
from snrbench.families import get as get_family
from snrbench.families import load_suite
from snrbench.truth.onset import certified_prefix, onset_index
from snrbench.truth.train import checkpoint_name, load_checkpoint

REPO = Path(__file__).resolve().parents[1]
#: family → (k, chains, lr_decay) of its recipe
RECIPES = {"mnist-plateau-pcd16": (16, 4, 256), "mnist-plateau-pcd32": (32, 4, 256)}
UPDATES = [0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_suite_parses_and_every_checkpoint_matches_its_hash_and_recipe(name):
    k, chains, decay = RECIPES[name]
    fam = get_family(name)
    assert not fam.default and fam.onset and fam.tiers == ("model", "sampler-only")
    doc = tomllib.loads((REPO / "tasks" / f"{name}.toml").read_text())
    assert doc["grid"]["updates"] == UPDATES and doc["model"]["checkpoints"] == name
    assert f"--k {k} --chains {chains} --lr-decay {decay} --out tasks/{name}" in (REPO / "tasks" / f"{name}.toml").read_text()
    header, cells = load_suite(name)
    assert header["family"] == name and len(cells) == 12 * len(doc["grid"]["hidden"])
    for cell in cells:
        spec = cell.spec
        rbm = fam.build_model(spec)  # the npz's SHA-256 against the cell's spec
        assert rbm.n_hidden == spec["n_hidden"] and (spec["train_k"], spec["train_chains"]) == (k, chains)
    # both sizes are shipped for the whole grid (m = 64 too where the TOML does not list it yet)
    for m in (16, 64):
        for u in UPDATES:
            _, meta = load_checkpoint(REPO / "tasks" / name / checkpoint_name(m, u))  # file hash against its metadata
            hp = meta["hyper_parameters"]
            assert (hp["k"], hp["chains"], hp["lr_decay"], hp["lr"], hp["updates"]) == (k, chains, decay, 0.05, 16384)
            assert meta["update"] == u and hp["n_hidden"] == m
    sizes = sum(p.stat().st_size for p in (REPO / "tasks" / name).iterdir())
    assert len(list((REPO / "tasks" / name).iterdir())) == 48 and sizes < 4e6


def _stored_truth(name):
    rel = get_family(name).truth_paths()[0]
    if not (REPO / "results" / rel).exists():
        pytest.skip(f"no stored ground truth for {name}")
    return store.read_table(REPO / "results", rel).to_pandas()  # checksum and schema against the manifest


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_stored_truth_is_the_suites_and_its_onset_needs_the_autocorrelation(name):
    k, chains, _ = RECIPES[name]
    truth = _stored_truth(name)
    _, cells = load_suite(name)
    assert set(truth.cell_id) == {c.cell_id for c in cells}  # a retrained checkpoint is a new cell: stale truth fails
    for m, g in truth.groupby("n_hidden"):
        per = []
        for update, c in g.groupby("update"):
            c = c.set_index("T")
            assert (c.train_k.iloc[0], c.train_chains.iloc[0]) == (k, chains)
            per.append(dict(update=update, equilibrated=bool(c.equilibrated.iloc[0]), certified=bool(c.certified.iloc[0]),
                            q1=c.log10_q[1], q1_low=c.ci_low[1], qk=c.log10_q[k], qk_low=c.ci_low[k],
                            qk_high=c.ci_high[k]))
        per = certified_prefix(pd.DataFrame(per))
        assert len(per) == 12, f"m = {m}: only {len(per)} leading checkpoints trusted"
        q_train = np.log10(chains) + per.qk.to_numpy()
        i = onset_index(q_train)
        assert i > 0, f"m = {m}: no onset (index {i}) in {np.round(q_train, 3)}"
        # the crossing is outside the Monte Carlo error: some earlier checkpoint is above 1 by its whole CI,
        # the onset below 1 by its whole CI
        assert (np.log10(chains) + per.qk_low.iloc[:i] >= 0).any() and np.log10(chains) + per.qk_high.iloc[i] < 0
        # at the onset Q(k) ≤ k·Q(1)/2, at the CI ends too (log10: qk − q1 − log10 k ≤ −log10 2)
        at = per.iloc[i]
        assert at.qk - at.q1 - np.log10(k) <= -np.log10(2), (m, at.update)
        assert at.qk_high - at.q1_low - np.log10(k) <= -np.log10(2), (m, at.update)
