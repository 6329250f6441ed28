"""The package version (one place; the Parquet metadata and ``snrbench --version`` read it)."""
__version__ = "0.1.0"
