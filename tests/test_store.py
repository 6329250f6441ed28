"""Storage: atomic writes, checksum manifest, verify, interrupted and resumed generation."""
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from snrbench.jobs import groundtruth

from snrbench import store
from snrbench.store.schema import TABLES, arrow_schema

FIXTURE = Path(__file__).parent / "data" / "exact-rbm.toml"


@pytest.fixture
def results(tmp_path):
    out = groundtruth.generate("exact-rbm", tmp_path / "results", workers=1, progress=False, suite_file=FIXTURE)
    assert out["computed"] == 4
    return tmp_path / "results"


def checksums(root):
    return {p: store.sha256_file(p) for p in sorted(Path(root).rglob("*")) if p.is_file()}


def test_generated_files_verify_and_carry_provenance(results):
    assert store.verify(results) == []
    rel, rel_s, rel_o = groundtruth.ground_truth_paths("exact-rbm")
    table = store.read_table(results, rel)
    assert table.num_rows == 4 * 17
    meta = json.loads(table.schema.metadata[b"snrbench"])
    assert meta["method"] == "exact" and meta["suite"] == "v1" and meta["seeds"] == [0]
    assert "Arb" in meta["precision"] and meta["schema_version"] == "1"
    assert table.schema.field("tau_grad").metadata[b"unit"] == b"sweeps"
    spec = store.read_table(results, rel_s).to_pandas()
    assert set(spec.sector) == {"even", "odd", "all"}
    op = store.read_table(results, rel_o).to_pandas()
    assert len(op) == 4 * 4 * 17 and set(op.start) == {"uniform", "data"}
    assert set(op.burn_in_rule) == {"0", "ceil(5/observable_gap)"}
    assert (op.bias2 <= op.mse * (1 + 1e-12)).all()


def test_one_changed_byte_fails_verify(results):
    path = results / groundtruth.ground_truth_paths("exact-rbm")[0]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    problems = store.verify(results)
    assert len(problems) == 1 and "checksum mismatch" in problems[0] and "exact-rbm.parquet" in problems[0]
    with pytest.raises(store.ResultsError, match="checksum mismatch"):
        store.read_table(results, groundtruth.ground_truth_paths("exact-rbm")[0])


def test_unlisted_and_missing_files_are_reported(results, tmp_path):
    (results / "ground_truth" / "extra.parquet").write_bytes(b"PAR1")
    (results / groundtruth.ground_truth_paths("exact-rbm")[1]).unlink()
    problems = "\n".join(store.verify(results))
    assert "extra.parquet: not listed" in problems and "spectrum.parquet: listed" in problems
    with pytest.raises(store.ResultsError, match="missing result file"):
        store.read_table(tmp_path, "ground_truth/nothing.parquet")


def test_schema_mismatch_is_refused(tmp_path):
    with pytest.raises(store.ResultsError, match="does not match"):
        store.write_table(tmp_path, "x.parquet", "spectrum", {"cell_id": ["a"]})
    assert not (tmp_path / "x.parquet").exists()


def test_interrupted_generation_keeps_previous_files_and_resumes(results, monkeypatch):
    before = checksums(results)
    calls = []
    real = groundtruth.solve_cell

    def flaky(family, spec_json):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(spec_json)
        return real(family, spec_json)

    monkeypatch.setattr(groundtruth, "solve_cell", flaky)
    with pytest.raises(KeyboardInterrupt):
        groundtruth.generate("exact-rbm", results, force=True, workers=1, progress=False, suite_file=FIXTURE)
    after = {p: h for p, h in checksums(results).items() if ".partial" not in p.parts}
    assert after == before  # stored results untouched
    assert store.verify(results) == []
    assert len(list((results / ".partial" / "exact-rbm").glob("*.ground_truth.parquet"))) == 2
    # a first generation interrupted the same way resumes where it stopped
    fresh = results.parent / "fresh"
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        groundtruth.generate("exact-rbm", fresh, workers=1, progress=False, suite_file=FIXTURE)
    assert not (fresh / "ground_truth").exists()
    monkeypatch.setattr(groundtruth, "solve_cell", real)
    out = groundtruth.generate("exact-rbm", fresh, workers=1, progress=False, suite_file=FIXTURE)
    assert out["computed"] == 2  # only the two missing cells
    assert not (fresh / ".partial").exists() and store.verify(fresh) == []
    rel = groundtruth.ground_truth_paths("exact-rbm")[0]
    a, b = (pq.read_table(r / rel).to_pandas() for r in (results, fresh))
    np.testing.assert_array_equal(a.log10_q, b.log10_q)  # resumed result equals the uninterrupted one


def test_current_results_are_skipped(results):
    out = groundtruth.generate("exact-rbm", results, workers=1, progress=False, suite_file=FIXTURE)
    assert out["skipped"] and out["computed"] == 0


def test_every_declared_column_has_a_unit_entry():
    for name, cols in TABLES.items():
        schema = arrow_schema(name)
        assert len({c.name for c in cols}) == len(cols)
        assert all(b"unit" in f.metadata and f.metadata[b"doc"] for f in schema)
