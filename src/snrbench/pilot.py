"""The name submitted entries import: the very module ``snrbench.predict.pilot`` under its old name."""
import sys

from .predict import pilot as _module

sys.modules[__name__] = _module
