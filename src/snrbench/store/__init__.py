"""Storage: the one Parquet schema (:mod:`~snrbench.store.schema`) and the results store
(:mod:`~snrbench.store.results`: the SHA-256 manifest, verification; :mod:`~snrbench.store.transaction`:
transactional commits, a family's tables and the manifest together or not at all, and recovery
after a kill).

A bottom layer beside ``core``: it imports no other part of snrbench.
"""
from ._files import MANIFEST, ResultsError, atomic_write, sha256_file
from .transaction import JOURNAL, commit, commit_files, recover
from .results import read_table, save_figure, verify, write_table

__all__ = ["ResultsError", "atomic_write", "write_table", "read_table", "verify", "sha256_file", "save_figure", "MANIFEST",
           "commit", "commit_files", "recover", "JOURNAL"]
