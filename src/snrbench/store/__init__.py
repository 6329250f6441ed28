"""Storage: the one Parquet schema (:mod:`~snrbench.store.schema`) and the results store
(:mod:`~snrbench.store.results`: atomic writes, the SHA-256 manifest, verification).

A bottom layer beside ``core``: it imports no other part of snrbench.
"""
from .results import MANIFEST, ResultsError, atomic_write, read_table, save_figure, sha256_file, verify, write_table

__all__ = ["ResultsError", "atomic_write", "write_table", "read_table", "verify", "sha256_file", "save_figure", "MANIFEST"]
