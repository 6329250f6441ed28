"""snrbench: a benchmark suite and leaderboard for trainability predictors of energy-based models.

Layers, lowest first (a module imports only from its own layer or lower ones; ``lint-imports``
checks it): ``core`` and ``store`` → ``truth`` → ``families`` → ``jobs`` → ``predict`` →
``report`` | ``diagnosis`` → ``cli``. The top-level ``galerkin``, ``pilot``, ``autocorr`` and ``spectral`` are
re-exports kept for submitted entries.
"""
from ._version import __version__
from .core.model import RBM

__all__ = ["RBM", "__version__", "diagnose", "load"]


def __getattr__(name):  # lazy: ``import snrbench`` stays light
    if name == "diagnose":
        from .diagnosis import diagnose

        return diagnose
    if name == "load":
        from .store.load import load

        return load
    raise AttributeError(f"module 'snrbench' has no attribute {name!r}")
