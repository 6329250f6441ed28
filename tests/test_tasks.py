"""Suite specs: the 48-cell exact-rbm grid, content hashes, and clear errors on bad specs."""
from pathlib import Path

import numpy as np
import pytest

from snrbench.core.model import RBM
from snrbench.families import TaskSpecError, build_data, build_model, load_suite

GOOD = (Path(__file__).parent / "data" / "exact-rbm.toml").read_text()


def test_exact_rbm_suite_has_48_unique_cells():
    header, cells = load_suite("exact-rbm")
    assert header["suite"] == "v1" and len(cells) == 48
    assert len({c.cell_id for c in cells}) == 48
    specs = [c.spec for c in cells]
    assert {(s["n_visible"], s["n_hidden"]) for s in specs} == {(10, 4), (12, 6)}
    assert {s["beta"] for s in specs} == {0.5, 1.0, 2.0, 3.0}
    assert sum(s["symmetric"] for s in specs) == 24


def test_model_and_data_follow_the_recipe():
    _, cells = load_suite("exact-rbm")
    cell = next(c for c in cells if not c.spec["symmetric"] and c.spec["beta"] == 2.0 and c.spec["n_visible"] == 12)
    rbm = build_model(cell)
    assert rbm.W.shape == (12, 6) and not rbm.spin_flip_symmetric
    # W = (β/√n)(ξηᵀ + 0.3 G): the rank-one part dominates the sign pattern of the largest singular vector
    u, s, vt = np.linalg.svd(rbm.W)
    assert s[0] > 2 * s[1]
    data = build_data(cell)
    assert data.shape == (500, 12) and set(np.unique(data)) == {-1.0, 1.0}
    assert build_model(cell).sha256 == rbm.sha256  # deterministic
    np.testing.assert_array_equal(build_data(cell), data)


def test_cell_id_is_a_content_hash():
    _, a = load_suite("exact-rbm")
    assert a[0].cell_id == "b96ed3eab2393d01"  # frozen: a changed spec or hash scheme is a new cell


@pytest.mark.parametrize("edit, message", [
    (("betas = [1.0, 3.0]", "betas = [1.0, -3.0]"), "betas"),
    (("seeds = [0]", "seeds = [0, 0]"), "repeats a cell"),
    (('units = "spin"', 'units = "binary"'), "spin units"),
    (('recipe = "mattis+disorder"', 'recipe = "hopfield"'), "unknown recipe"),
    (("n_samples = 200\n", ""), "missing key 'n_samples'"),
    (("shapes = [[6, 3]]", "shapes = [[6]]"), "shape must be"),
    (("[grid]", "[grid"), "not valid TOML"),
])
def test_malformed_specs_name_the_problem(tmp_path, edit, message):
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace(*edit))
    with pytest.raises(TaskSpecError, match=message):
        load_suite(path)


def test_unknown_family_and_missing_file():
    with pytest.raises(TaskSpecError, match="unknown family"):
        load_suite("nope")
    with pytest.raises(TaskSpecError, match="not found"):
        load_suite("/nonexistent/x.toml")


@pytest.mark.parametrize("kwargs, message", [
    (dict(W=np.zeros((3,))), "2-D"),
    (dict(W=np.full((3, 2), np.nan)), "non-finite"),
    (dict(W=np.zeros((3, 2)), a=np.zeros(2)), "a has shape"),
    (dict(W=np.zeros((3, 2)), b=np.zeros(3)), "b has shape"),
    (dict(W=np.zeros((3, 2)), units="ising"), "units"),
])
def test_rbm_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RBM(**kwargs)


def test_rbm_is_immutable():
    rbm = RBM(np.ones((3, 2)))
    with pytest.raises(ValueError):
        rbm.W[0, 0] = 5.0
    with pytest.raises(AttributeError):
        rbm.units = "binary"


def test_planted_suite_cells_and_models():
    from snrbench.families import build_model, load_suite

    header, cells = load_suite("planted")
    assert header["family"] == "planted" and len(cells) == 60
    labels = [c.label for c in cells]
    assert "n10m5-b3-M2-s0" in labels and sum(lab.split("-")[2] == "ferro" for lab in labels) == 12
    by = {c.label: c for c in cells}
    ferro = build_model(by["n8m4-b1-ferro-s0"])
    assert ferro.spin_flip_symmetric and np.all(ferro.W > 0)  # all-+1 pattern dominates the 0.1 noise here
    for M in (1, 2, 3, 4):
        W = build_model(by[f"n12m6-b2-M{M}-s0"]).W
        s = np.linalg.svd(W, compute_uv=False)
        assert np.sum(s > 1.0) == M  # M planted directions (≥ 2.6) above the noise (≤ 0.3)


def test_planted_spec_errors(tmp_path):
    from snrbench.families import TaskSpecError, load_suite, suite_path

    text = suite_path("planted").read_text()
    bad = tmp_path / "planted.toml"
    bad.write_text(text.replace("patterns = [1, 2, 3, 4]", "patterns = [0, 2]"))
    with pytest.raises(TaskSpecError, match="'patterns' must be positive ints"):
        load_suite(bad)
    bad.write_text(text.replace('recipe = "planted"', 'recipe = "mattis+disorder"'))
    with pytest.raises(TaskSpecError, match="unknown recipe 'mattis\\+disorder' for planted"):
        load_suite(bad)
