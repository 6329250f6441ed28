"""Storage: atomic writes, checksum manifest, verify, interrupted and resumed generation."""
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
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


# -- the transactional store (snrbench.store.transaction; the kill -9 harness is tests/test_store_kill.py)
def _info(results, rel):
    """The generation's own metadata of ``rel`` (what its writer passed; file_metadata adds the rest)."""
    meta = json.loads(pq.read_schema(results / rel).metadata[b"snrbench"])
    return {k: v for k, v in meta.items() if k not in ("schema_version", "table", "code_version", "hardware", "python")}


def _cell_subset(results, rel, n):
    """The rows of the first ``n`` cells of ``rel`` (same schema)."""
    table = pq.read_table(results / rel)
    keep = sorted(set(table.column("cell_id").to_pylist()))[:n]
    return table.filter(pc.is_in(table.column("cell_id"), value_set=pa.array(keep)))


def test_tables_of_one_family_with_different_cells_fail_verify(results):
    """A table rewritten alone (a generation that stopped after one table) beside its old siblings."""
    rels = groundtruth.ground_truth_paths("exact-rbm")
    manifest = json.loads((results / store.MANIFEST).read_text())["files"]
    assert len({(manifest[r]["group"], manifest[r]["cell_set"]) for r in rels}) == 1  # recorded at commit time
    store.write_table(results, rels[0], "ground_truth", _cell_subset(results, rels[0], 2), **_info(results, rels[0]))
    assert json.loads((results / store.MANIFEST).read_text())["files"][rels[0]]["group"] == "exact-rbm"  # kept
    problems = store.verify(results)
    assert problems == ["ground_truth/exact-rbm.operational.parquet: 4 cells, ground_truth/exact-rbm.parquet: 2 cells, "
                        "ground_truth/exact-rbm.spectrum.parquet: 4 cells (the 'exact-rbm' tables disagree on their "
                        "cells: not written by one generation)"]
    assert not groundtruth.is_current(results, "exact-rbm", groundtruth.load_suite(FIXTURE)[1])


def test_a_manifest_without_groups_is_checked_by_the_declared_tables(results, capsys):
    """Stores written before groups were recorded: `snrbench verify` checks each family's declared tables
    (no sibling may hold a cell that the main table lacks)."""
    from snrbench.cli import main

    rels = groundtruth.ground_truth_paths("exact-rbm")
    store.write_table(results, rels[0], "ground_truth", _cell_subset(results, rels[0], 2), **_info(results, rels[0]))
    path = results / store.MANIFEST
    manifest = json.loads(path.read_text())
    for entry in manifest["files"].values():
        del entry["group"], entry["cell_set"]
    path.write_text(json.dumps(manifest))
    assert store.verify(results) == []  # nothing recorded, nothing declared
    assert len(store.verify(results, groups={"exact-rbm": rels})) == 1
    assert store.verify(results, groups={"exact-rbm": [rels[1], rels[0]]}) == []  # a main table with every cell
    assert main(["--results", str(results), "verify"]) == 1
    err = capsys.readouterr().err
    assert "ground_truth/exact-rbm.operational.parquet: 4 cells, ground_truth/exact-rbm.parquet: 2 cells" in err


def test_a_commit_that_fails_before_its_journal_changes_nothing(results, monkeypatch):
    rels = groundtruth.ground_truth_paths("exact-rbm")
    before = checksums(results)
    good = pq.read_table(results / rels[0])
    with pytest.raises(store.ResultsError, match="does not match"):  # refused before any file is written
        store.commit(results, {rels[0]: ("ground_truth", good, {}), rels[1]: ("spectrum", {"cell_id": ["a"]}, {})})
    real, calls = pq.write_table, []

    def second_fails(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(*args, **kw)

    monkeypatch.setattr(pq, "write_table", second_fails)
    with pytest.raises(OSError, match="disk full"):  # while staging: the staged file is removed again
        store.commit(results, {rels[0]: ("ground_truth", good, {}),
                               rels[2]: ("operational", pq.read_table(results / rels[2]), {})})
    assert len(calls) == 2 and checksums(results) == before  # no temporary file, no journal


def test_recovery_rolls_a_journal_forward_and_removes_strays(results, monkeypatch):
    """An interrupted commit (staged, journal written, nothing renamed) is finished by the next reader;
    a stray temporary file of a process that is gone is removed, a live process's is kept."""
    from snrbench.store import transaction

    rels = groundtruth.ground_truth_paths("exact-rbm")
    meta = _info(results, rels[0])
    small = _cell_subset(results, rels[0], 1)
    monkeypatch.setattr(transaction, "_roll_forward", lambda root, journal: [])  # "killed" at the commit point
    store.commit(results, {rels[0]: ("ground_truth", small, meta)})
    monkeypatch.undo()
    assert (results / store.JOURNAL).exists()
    dead = results / "ground_truth" / f".exact-rbm.parquet.{2**22 + 12345}.tmp"  # above any pid_max: no such process
    live = results / "ground_truth" / f".exact-rbm.parquet.{os.getppid()}.tmp"
    dead.write_bytes(b"half")
    live.write_bytes(b"busy")
    assert store.read_table(results, rels[0]).num_rows == small.num_rows  # the reader finished the commit
    assert not (results / store.JOURNAL).exists() and dead.exists()  # readers do not sweep
    done = store.recover(results)
    assert done == [f"{results}: removed the stray temporary file ground_truth/{dead.name}"]
    assert not dead.exists() and live.exists()
    live.unlink()
    assert store.recover(results) == []  # idempotent


def test_stale_partials_are_reused_or_removed_and_reported(results):
    """A resumed generation reuses the finished cells of its suite and removes (and names) the
    partial files of cells that are not in it, in the same commit as its tables."""
    rels = groundtruth.ground_truth_paths("exact-rbm")
    before = checksums(results)
    cells = groundtruth.load_suite(FIXTURE)[1]
    folder = results / ".partial" / "exact-rbm"
    folder.mkdir(parents=True)
    for name, rel in zip(("ground_truth", "spectrum", "operational"), rels):  # cell 0 finished by an earlier run
        table = pq.read_table(results / rel)
        pq.write_table(table.filter(pc.equal(table.column("cell_id"), cells[0].cell_id)),
                       folder / f"{cells[0].cell_id}.{name}.parquet")
    (folder / "0123456789abcdef.ground_truth.parquet").write_bytes(b"a cell of another suite")
    (results / rels[1]).unlink()  # the stored tables are not current: generate runs
    out = groundtruth.generate("exact-rbm", results, workers=1, progress=False, suite_file=FIXTURE)
    assert out["reused"] == 1 and out["computed"] == 3
    assert out["removed_partials"] == ["0123456789abcdef.ground_truth.parquet"]
    assert not (results / ".partial").exists() and store.verify(results) == []
    assert checksums(results) == before  # the same files, byte for byte
