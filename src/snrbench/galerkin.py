"""The name submitted entries import: the very module ``snrbench.predict.galerkin`` under its old name."""
import sys

from .predict import galerkin as _module

sys.modules[__name__] = _module
