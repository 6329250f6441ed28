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

import os
import stat

import pytest

from snrbench.families import Cell, load_suite
from snrbench.predict import runner, seeds
from snrbench.predict.registry import Entry
from snrbench.predict.runner import CellResult, EntryRun
from submit_kit import _broken_entry, bench  # noqa: F401 - bench is a fixture

# -- #6: the seed is secret ------------------------------------------------------------------

#: A white-box entry that knows the seed it was told for its cell (as an author computes it offline
#: from the published suite), rebuilds its sampler's initial states with it and compares them with
#: the metered sampler's; it also tries to read the key. It reports both in its failure message.
GUESS_THE_STREAM = """\
    import torch
    from snrbench.core.sampler import make_sampler
    from snrbench.predict.sandbox import violations
    guess = make_sampler(problem.model, 64, seed={seeds!r}[problem.label]).v
    metered = problem.sampler(64).v
    try:
        with open({key_file!r}, "rb") as fh:
            key = fh.read().hex()
    except BaseException as exc:  # Landlock's PermissionError or the audit hook's refusal
        key = "refused (" + type(exc).__name__ + ")"
    violations().clear()  # report the guess, not the refused read
    raise RuntimeError(f"initial states reproduced: {{bool(torch.equal(guess, metered))}}; key: {{key}}")
    """


def _guess(bench, tmp_path, cell: Cell, seed: int) -> str:
    """The message of the entry above on ``cell``, told ``seed``."""
    key_file = str(bench.results / ".sampler-key")
    path = tmp_path / f"guess_{cell.cell_id[:8]}.py"
    path.write_text(_broken_entry(GUESS_THE_STREAM.format(seeds={cell.label: seed}, key_file=key_file),
                                  name="guess", access="white-box"))
    entry = runner.discover(str(path), bench.results)[0]
    run = runner.run_entry(entry, "exact-rbm", [cell], bench.results, time_limit=60, budget=2**16)
    (result,) = run.results
    assert not result.ok
    return result.error


def test_an_entry_cannot_rebuild_its_samplers_stream_from_the_cell_id(bench, tmp_path):
    """The public seed ``int(cell_id[:8], 16)`` no longer gives the metered sampler's initial states,
    and the key is out of the entry's reach. The same rebuild with the seed the runner derives from
    the folder's key does match (the check can tell), and that key is the folder's, mode 0600."""
    cells = load_suite("exact-rbm")[1]
    err = _guess(bench, tmp_path, cells[0], int(cells[0].cell_id[:8], 16))
    assert "raised RuntimeError: initial states reproduced: False; key: refused (" in err, err

    from snrbench.predict import seeds

    key = seeds.read_key(bench.results)
    assert key is not None and len(key) == seeds.KEY_BYTES  # made by the first run, in the results folder
    assert stat.S_IMODE(os.stat(bench.results / seeds.KEY_NAME).st_mode) == 0o600
    assert key.hex() not in err
    control = _guess(bench, tmp_path, cells[1], seeds.cell_seed(cells[1].cell_id, key))
    assert "raised RuntimeError: initial states reproduced: True; key: refused (" in control, control


#: An entry that knows the key and its cell's seed (the test tells it, as if they had leaked) and looks
#: for either in every channel without a path it can read: each visible process's argv and
#: environment, its own file descriptors' targets, and its own environment. It reports what it found.
SEARCH_THE_CHANNELS = """\
    import glob, os
    wanted = {{"key": {key!r}, "seed": {seed!r}}}
    seen, hits = 0, set()
    for path in glob.glob("/proc/[0-9]*/cmdline") + glob.glob("/proc/[0-9]*/environ"):
        try:
            with open(path, "rb") as fh:
                text = fh.read().replace(b"\\0", b" ").decode(errors="replace")
        except OSError:
            continue
        seen += 1
        hits |= {{k for k, v in wanted.items() if v in text}}
    for fd in glob.glob("/proc/self/fd/*"):
        try:
            hits |= {{k for k, v in wanted.items() if v in os.readlink(fd)}}
        except OSError:
            pass
    hits |= {{k for k, v in wanted.items() if any(v in x for x in list(os.environ) + list(os.environ.values()))}}
    raise RuntimeError(f"read {{seen}} argv/environ files; found: {{sorted(hits)}}")
    """


def test_neither_the_key_nor_the_seed_is_in_argv_environment_or_descriptors(bench, tmp_path):
    """The key and the cell's seed travel only on the sampler processes' own pipe: an entry that
    knew them would find neither in any process's argv or environment it can read, nor in its
    descriptors (the check can fail: it reads at least its own argv and environment)."""
    key = seeds.folder_key(bench.results)
    cell = load_suite("exact-rbm")[1][0]
    path = tmp_path / "search.py"
    path.write_text(_broken_entry(SEARCH_THE_CHANNELS.format(key=key.hex(), seed=str(seeds.cell_seed(cell.cell_id, key))),
                                  name="search", access="sampler-only"))
    entry = runner.discover(str(path), bench.results)[0]
    (result,) = runner.run_entry(entry, "exact-rbm", [cell], bench.results, time_limit=60, budget=2**16).results
    assert not result.ok and "found: []" in result.error, result.error
    assert int(result.error.split("read ")[1].split()[0]) >= 2, result.error


def test_seeds_are_keyed_and_the_key_of_a_folder_is_kept():
    """Seeds differ between keys and are not the public one; a folder's key is made once, reused,
    and a damaged key file is refused with a message that says what to do."""
    import tempfile
    from pathlib import Path

    from snrbench.predict import seeds

    cell_id = load_suite("exact-rbm")[1][0].cell_id
    k1, k2 = seeds.new_key(), seeds.new_key()
    s1 = seeds.cell_seed(cell_id, k1)
    assert s1 == seeds.cell_seed(cell_id, k1) and 0 <= s1 < 2**63
    assert s1 != seeds.cell_seed(cell_id, k2) and s1 != int(cell_id[:8], 16)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "results"
        key = seeds.folder_key(root)
        assert seeds.folder_key(root) == key and seeds.store_key(root, k1) == key  # the first key stays
        assert sorted(os.listdir(root)) == [seeds.KEY_NAME]  # no temporary file left
        (root / seeds.KEY_NAME).write_bytes(b"short")
        with pytest.raises(ValueError, match=r"a sampler key has 32 bytes, this file 5; it is damaged \(remove it"):
            seeds.read_key(root)


def test_the_workers_task_carries_neither_the_key_nor_the_seed(bench):
    """What the sandboxed worker receives for a cell: no seed and no key (they go to the sampler process)."""
    from snrbench.families import get
    from snrbench.predict import seeds

    cell = load_suite("exact-rbm")[1][0]
    key = seeds.folder_key(bench.results)
    seed = seeds.cell_seed(cell.cell_id, key)
    entry = Entry("probe", "white-box", "/nowhere.py::Probe", "0" * 64)
    w = runner._Worker(entry, bench.results, runner.worker_limits(60, 1), ())
    try:
        task = w.put_cell(get("exact-rbm"), cell, "white-box", 2**16, seed)
    finally:
        w.close()
    text = repr(task)
    assert task["info"]["n_visible"] > 0 and "seed" not in task
    assert str(seed) not in text and key.hex() not in text


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


# -- nits: nothing of a worker is lost or left ------------------------------------------------

def test_a_worker_that_fails_to_start_leaves_no_sampler_process(bench, monkeypatch):
    """The sampler process starts first; when the worker's own start then fails, the sampler
    process is killed and forgotten (it was left running, in the runner's live set)."""
    spawned = []
    spawn = runner._spawn

    def second_fails(cmd, **kwargs):
        if spawned:
            raise OSError(11, "Resource temporarily unavailable (the test's refusal)")
        spawned.append(spawn(cmd, **kwargs))
        return spawned[0]

    monkeypatch.setattr(runner, "_spawn", second_fails)
    entry = Entry("probe", "sampler-only", "/nowhere.py::Probe", "0" * 64)
    with pytest.raises(OSError, match="the test's refusal"):
        runner._Worker(entry, bench.results, runner.worker_limits(60, 1), ())
    (sampler,) = spawned
    assert sampler.poll() is not None and sampler.pid not in runner._LIVE


def test_what_a_worker_left_behind_is_reported_not_dropped(bench, monkeypatch, capsys):
    """``_Worker.close`` says what it could not clean up; the run keeps it (``EntryRun.cleanup``)
    and ``predict``/``submit`` print it as a warning."""
    from snrbench.cli import _print_failures

    close = runner._Worker.close
    monkeypatch.setattr(runner._Worker, "close", lambda self: (close(self), "could not remove /x: busy")[1])
    entry = Entry("probe", "sampler-only", "/nowhere.py::Probe", "0" * 64)
    run = runner.run_entry(entry, "exact-rbm", load_suite("exact-rbm")[1][:1], bench.results, time_limit=60,
                           budget=2**16)
    assert run.cleanup == ["could not remove /x: busy"]
    _print_failures([run])
    assert ("warning: probe (sampler-only) on exact-rbm at budget 65,536: could not clean up after a worker: "
            "could not remove /x: busy") in capsys.readouterr().err
