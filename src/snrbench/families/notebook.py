"""The families the research notebook's claims are replicated on (:mod:`snrbench.report.replicate`
reads these names, so that nothing outside this package names a family).

* ``EXACT``: the exact RBM suite, spin-flip symmetric and biased cells (claims 1 and 5);
* ``PLANTED``: the planted-mode family, whose grid is close to the notebook's exp5 (claim 6);
* ``TRAINED``: the MNIST checkpoints with m = 16 and 64 (claims 4, 7 and 9);
* ``TRAINED_LARGE``: the m = 256 MNIST checkpoints (claims 3, 7 and 9).
"""
EXACT = "exact-rbm"
PLANTED = "planted"
TRAINED = "mnist"
TRAINED_LARGE = "mnist-large"
