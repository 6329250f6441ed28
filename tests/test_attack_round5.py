"""Round 5 of the hostile set (the runner's known holes #6 and #10): each as an entry, or as the
answers such an entry makes the runner return, with what it now gets.

- #6: a cell's sampler seed was ``int(cell_id[:8], 16)``, a public function of the published cell
  id, so an entry could rebuild its sampler's initial states and random stream. It is now a keyed
  hash under the results folder's secret key (:mod:`snrbench.predict.seeds`), which no worker reads.
- #10: on Dask, a failed cell whose message began with "skipped:" was not counted towards
  ``max_failures``: an entry could fail every cell with that text and run the whole suite.
  Skipped cells now carry the runner's flag (``CellResult.skipped``); the text decides nothing.
"""
from __future__ import annotations

from snrbench.families import Cell, load_suite
from snrbench.predict import runner
from snrbench.predict.registry import Entry
from snrbench.predict.runner import CellResult, EntryRun

# -- #10: a skipped cell is the runner's flag, not a message ---------------------------------

def test_failures_worded_as_skipped_count_towards_max_failures_on_dask(tmp_path, monkeypatch):
    """A hostile entry fails every cell with "skipped: ..." on the Dask workers: the client counts
    them (they are not flagged skipped), stops after the first chunk, and only the cells it never
    ran are flagged skipped."""
    from snrbench.jobs import executor
    from snrbench.predict import predictions

    cells = load_suite("exact-rbm")[1]
    chunks_seen = []

    def fake_map(fn, chunks, **kwargs):
        for chunk in chunks:
            chunks_seen.append(chunk)
            yield chunk, [CellResult(Cell(s).label, Cell(s).cell_id, False, "skipped: the entry already failed "
                                     "3 cells") for s in chunk]

    monkeypatch.setattr(executor, "map_cells", fake_map)
    entry = Entry("liar", "sampler-only", "/nowhere.py::Liar", "0" * 64)
    run = predictions._run_on_cluster(entry, "exact-rbm", cells, tmp_path / "results", "tcp://x:1", time_limit=5.0,
                                      limits=None, budget=65536)
    assert len(chunks_seen) == 1, f"{len(chunks_seen)} of {len(predictions.chunks_of(cells))} chunks were run"
    first = predictions.DASK_CHUNK_CELLS
    assert [r.skipped for r in run.results] == [False] * first + [True] * (len(cells) - first)
    assert len(run.failures) == len(cells)


def test_an_entrys_failures_worded_as_skipped_are_still_printed(capsys):
    """``predict``/``submit`` print each failed cell and summarise the skipped ones: an entry's
    message that merely begins with "skipped:" is printed as its cell's failure, not hidden."""
    from snrbench.cli import _print_failures

    cells = load_suite("exact-rbm")[1][:3]
    entry = Entry("liar", "sampler-only", "/nowhere.py::Liar", "0" * 64)
    results = [CellResult(c.label, c.cell_id, False, "skipped: nothing to see") for c in cells[:2]]
    assert _print_failures([EntryRun(entry, "exact-rbm", results, 65536)]) == 1
    err = capsys.readouterr().err
    for c in cells[:2]:
        assert f"  cell {c.label}: skipped: nothing to see\n" in err, err
    assert "more cell(s)" not in err
    results.append(runner.skipped_cell(cells[2], 2))  # a cell the runner never ran: summarised
    assert _print_failures([EntryRun(entry, "exact-rbm", results, 65536)]) == 1
    err = capsys.readouterr().err
    assert err.count("  cell ") == 2 and "  1 more cell(s) skipped: the entry already failed 2 cells (never run)\n" in err
