"""snrbench: a benchmark suite and leaderboard for trainability predictors of energy-based models."""
from .model import RBM

__version__ = "0.1.0"
__all__ = ["RBM", "__version__"]
