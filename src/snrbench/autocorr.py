"""The name submitted entries import: the very module ``snrbench.core.autocorr`` under its old name."""
import sys

from .core import autocorr as _module

sys.modules[__name__] = _module
