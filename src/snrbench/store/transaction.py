"""The transactional store: a commit changes its tables and the manifest together, or not at all.

Guarantee. After a process is killed at any point (``kill -9``; a power cut too, as every file is
fsynced before the rename that publishes it), the next store entry point (:func:`snrbench.store.verify`, :func:`~snrbench.store.read_table`,
:func:`~snrbench.store.write_table`, :func:`commit`, and through them ground-truth generation)
first runs :func:`recover`, and then sees either every table of the last commit and the manifest
that lists them, or the store exactly as it was before it: never one new table beside old
siblings, never a table the manifest does not match.

File paths stay where readers open them (``results/<rel>``); a commit of tables ``T1 … Tn``:

1. writes each new table to its temporary name beside its final path (``.<name>.<pid>.tmp``) and
   fsyncs it; so too the new manifest (the old one, the new entries set, removed ones dropped);
2. writes the journal ``.commit.json`` (to a temporary name, fsynced, renamed): the renames
   ``tmp → final`` with the SHA-256 of each file, the manifest's last, and the paths to remove.
   The journal's rename is the commit point: before it the store is the old one and the temporary
   files are strays; from it on the commit is decided and only ever rolled forward;
3. renames every file into place (the manifest last), removes the paths to remove;
4. deletes the journal.

:func:`recover` rolls a journal forward: a rename whose temporary file is still there is done, one
whose file is gone must find its final path with the journal's SHA-256 (done before); removals are
redone where the path still exists. Every step can be repeated, so a kill during recovery is
recovered by the next one. Then it deletes stray temporary files whose writer process is gone.
A temporary file is stray when no journal names it and the process id in its name runs no more
(on this machine; a live one's, or this process's own, is kept). Readers
(:func:`~snrbench.store.read_table`) only roll a journal forward (one ``stat`` when there is none);
:func:`~snrbench.store.verify` and every commit also sweep the strays.

Ground-truth generation commits a family's tables together with ``group=<family>`` (recorded in
their manifest entries with ``cell_set``, the digest of the generation's cells, which ``verify``
compares) and ``remove=[".partial/<family>"]``, so its partial files go with the same commit.

Commits and recoveries of one store take an exclusive ``flock`` on its folder (POSIX), so two
writers do not interleave their commits (readers do not lock: one reading during another
process's commit may see the commit half done, and a verify then fails until it has finished).
Each file operation calls the crash-injection hook :func:`snrbench.store._crash.step`.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from . import _crash
from ._files import (MANIFEST, ResultsError, fsync_dir, fsync_file, load_manifest, manifest_text, sha256_file,
                     tmp_owner, tmp_path)
from .schema import SCHEMA_VERSION, arrow_schema, file_metadata

__all__ = ["JOURNAL", "commit", "commit_files", "recover", "conform"]

JOURNAL = ".commit.json"


def conform(rel: str, table_name: str, data: dict | pa.Table, info: dict) -> pa.Table:
    """``data`` as a table of the declared ``table_name`` schema with its file metadata; ResultsError if it
    does not fit."""
    schema = arrow_schema(table_name)
    try:
        table = pa.Table.from_pydict(data, schema=schema) if isinstance(data, dict) else data.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError, ValueError) as exc:
        raise ResultsError(f"{rel}: data does not match the {table_name!r} schema ({exc})") from None
    return table.replace_schema_metadata(file_metadata(table_name, **info))


def commit(root: Path | str, tables: Mapping[str, tuple[str, dict | pa.Table, dict]], remove: Iterable[str] = (),
           group: str | None = None) -> dict[str, Path]:
    """Write ``tables`` (``rel → (table name, data, file metadata)``), update the manifest and remove the
    paths ``remove`` (files or folders, relative to ``root``; their manifest entries are dropped), all in
    one commit (module docstring). ``group``: recorded in the new tables' manifest entries, with
    ``cell_set``, a digest of every ``cell_id`` in this commit's tables (:func:`~snrbench.store.verify`
    checks that the tables of a group share it: one generation); None keeps each entry's previous group.
    Returns the final paths. Data that does not fit its schema raises ResultsError before any file is written.
    """
    root = Path(root)
    ready = {rel: (name, conform(rel, name, data, info)) for rel, (name, data, info) in tables.items()}
    remove = [_rel(r) for r in remove]

    cells = sorted({c for _, t in ready.values() if "cell_id" in t.column_names for c in t.column("cell_id").to_pylist()})
    cell_set = hashlib.sha256("\n".join(cells).encode()).hexdigest()[:16]  # the generation's cells

    def stage(manifest: dict, staged: list[tuple[Path, Path]]) -> None:
        for rel, (name, table) in ready.items():
            final = root / rel
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = tmp_path(final)
            staged.append((tmp, final))
            _crash.step()
            pq.write_table(table, tmp, compression="zstd")
            fsync_file(tmp)
            entry = dict(sha256=sha256_file(tmp), bytes=tmp.stat().st_size, table=name, rows=table.num_rows)
            kept = group if group is not None else manifest["files"].get(rel, {}).get("group")
            if kept is not None:
                entry["group"] = kept
                if "cell_id" in table.column_names:
                    entry["cell_set"] = cell_set
            manifest["files"][rel] = entry

    _transact(root, stage, remove)
    return {rel: root / rel for rel in ready}


def commit_files(root: Path | str, files: Mapping[str, Path | str], remove: Iterable[str] = ()) -> list[Path]:
    """Move the finished files ``files`` (``rel → source path``, on the same file system or copied) into
    ``root`` in one commit, like :func:`commit` (publication moves a staged copy of the results in this
    way). The manifest is not edited: a new ``manifest.json`` among ``files`` replaces it (last)."""
    root = Path(root)
    new_manifest = MANIFEST in files

    def stage(manifest: dict, staged: list[tuple[Path, Path]]) -> None:
        for rel, src in files.items():
            final = root / _rel(rel)
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = tmp_path(final)
            staged.append((tmp, final))
            _crash.step()
            try:
                os.replace(src, tmp)
            except OSError:  # another file system: copy
                shutil.copyfile(src, tmp)
            fsync_file(tmp)

    _transact(root, stage, [_rel(r) for r in remove], edit_manifest=not new_manifest)
    return [root / _rel(r) for r in files]


def recover(root: Path | str, sweep: bool = True) -> list[str]:
    """Finish an interrupted commit of ``root`` (and of the stores nested in it), then (``sweep``) delete
    stray temporary files of processes that no longer run; returns what was done, one line each."""
    root = Path(root)
    if not root.is_dir():
        return []
    journals, strays = _scan(root, sweep)
    if not journals and not strays:
        return []
    with _locked(root):
        return _recover_locked(root, sweep)


# -- the steps ------------------------------------------------------------------------------------------------
def _transact(root: Path, stage, remove: list[str], edit_manifest: bool = True) -> None:
    """Stage the new files (``stage(manifest, staged)`` writes them, edits ``manifest``, appends each
    ``(tmp, final)`` to ``staged`` before writing it), the new manifest and the journal; then roll the
    journal forward (module docstring)."""
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root):
        _recover_locked(root, sweep=True)
        manifest = load_manifest(root)
        staged: list[tuple[Path, Path]] = []
        journal = root / JOURNAL
        try:
            stage(manifest, staged)
            if edit_manifest:
                for rel in remove:
                    for listed in [r for r in manifest["files"] if r == rel or r.startswith(rel + "/")]:
                        del manifest["files"][listed]
                manifest["schema_version"] = SCHEMA_VERSION
                tmp = tmp_path(root / MANIFEST)
                staged.append((tmp, root / MANIFEST))
                _crash.step()
                tmp.write_text(manifest_text(manifest))
                fsync_file(tmp)
            staged.sort(key=lambda pair: pair[1] == root / MANIFEST)  # the manifest last
            text = json.dumps(dict(format=1, renames=[[_relative(t, root), _relative(f, root), sha256_file(t)]
                                                      for t, f in staged], remove=remove), indent=1) + "\n"
            tmp = tmp_path(journal)
            staged.append((tmp, journal))
            _crash.step()
            tmp.write_text(text)
            fsync_file(tmp)
            _crash.step()
            os.replace(tmp, journal)  # the commit point
            fsync_dir(root)
        except BaseException:
            if not journal.exists():
                for t, _ in staged:
                    t.unlink(missing_ok=True)
            raise
        _roll_forward(root, journal)


def _roll_forward(root: Path, journal: Path) -> list[str]:
    try:
        plan = json.loads(journal.read_text())
        renames, remove = plan["renames"], plan["remove"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ResultsError(f"{journal}: unreadable commit journal ({exc}); the store needs repair by hand") from None
    moved = removed = 0
    for tmp_rel, final_rel, digest in renames:
        tmp, final = root / tmp_rel, root / final_rel
        if tmp.exists():
            _crash.step()
            os.replace(tmp, final)
            moved += 1
        elif not final.is_file() or sha256_file(final) != digest:
            raise ResultsError(f"{journal}: cannot finish the interrupted commit: {tmp_rel} is gone and "
                               f"{final_rel} is not the committed file; the store needs repair by hand")
    for folder in sorted({(root / f).parent for _, f, _ in renames}):
        fsync_dir(folder)
    for rel in remove:
        path = root / rel
        if path.is_dir() and not path.is_symlink():
            _crash.step()
            shutil.rmtree(path)
            removed += 1
        elif path.exists() or path.is_symlink():
            _crash.step()
            path.unlink()
            removed += 1
        _prune(path.parent, root)
    _crash.step()
    journal.unlink()
    fsync_dir(root)
    return [f"{root}: finished an interrupted commit ({moved} of {len(renames)} file(s) renamed into place "
            f"now, {removed} of {len(remove)} removal(s) done now)"]


def _recover_locked(root: Path, sweep: bool) -> list[str]:
    done = []
    journals, _ = _scan(root, sweep)
    for journal in journals:
        if journal.parent == root:
            done += _roll_forward(root, journal)
        else:  # a nested store (e.g. fresh/<draw>/): its own lock
            with _locked(journal.parent):
                if journal.exists():
                    done += _roll_forward(journal.parent, journal)
    if sweep:
        for path in _scan(root, sweep)[1]:
            _crash.step()
            path.unlink(missing_ok=True)
            done.append(f"{root}: removed the stray temporary file {_relative(path, root)}")
    return done


def _scan(root: Path, sweep: bool) -> tuple[list[Path], list[Path]]:
    """(journals, stray temporary files) under ``root``: the root's journal only without ``sweep``."""
    if not sweep:
        return ([root / JOURNAL] if (root / JOURNAL).is_file() else []), []
    journals, strays = [], []
    for folder, _, names in os.walk(root):
        for name in names:
            if name == JOURNAL:
                journals.append(Path(folder, name))
            else:
                pid = tmp_owner(name)
                if pid is not None and not _alive(pid):
                    strays.append(Path(folder, name))
    journals.sort(key=lambda j: (j.parent != root, str(j)))
    return journals, sorted(strays)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` may still be writing its temporary files (this one always may)."""
    if pid == os.getpid() or os.name != "posix":  # no safe liveness probe: keep the file
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _prune(folder: Path, root: Path) -> None:
    """Remove ``folder`` and its parents below ``root`` while they are empty."""
    while folder != root and root in folder.parents and folder.is_dir() and not any(folder.iterdir()):
        _crash.step()
        folder.rmdir()
        folder = folder.parent


@contextmanager
def _locked(root: Path):
    try:
        import fcntl
    except ImportError:  # no flock (Windows): one writer at a time is the caller's business
        yield
        return
    fd = os.open(root, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _rel(rel: str | Path) -> str:
    rel = Path(rel).as_posix()
    if rel.startswith("/") or ".." in Path(rel).parts or rel in ("", "."):
        raise ValueError(f"not a path inside the results folder: {rel!r}")
    return rel


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()
