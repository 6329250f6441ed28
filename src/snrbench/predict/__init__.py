"""Predictors: the contract entries are written against (:mod:`.contract`: ``Problem`` in,
``Prediction`` out, the metered sampler, the exact operator of the white-box tier), the building
blocks entries are made of (:mod:`.pilot`, :mod:`.galerkin`), where entries come from
(:mod:`.registry`), how they run (:mod:`.runner`, :mod:`._worker`, :mod:`.launcher`, :mod:`.sandbox`) and how their
answers are stored (:mod:`.predictions`).

``from snrbench.predict import Predictor, Prediction`` is what an entry writes.
"""
from .contract import *  # noqa: F401,F403
from .contract import __all__  # noqa: F401
