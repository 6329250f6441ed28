"""The name submitted entries import: the very module ``snrbench.core.spectral`` under its old name."""
import sys

from .core import spectral as _module

sys.modules[__name__] = _module
