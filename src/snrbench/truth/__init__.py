"""Ground-truth solvers: the exact spectral solve of small RBMs (:mod:`.exact`, FLINT/Arb
eigenpairs) and of Ising models (:mod:`.exact_ising`), operational Q from a start distribution
(:mod:`.operational`), Monte Carlo Q(T) with bootstrap CIs (:mod:`.montecarlo`, :mod:`.mc_scale`),
parallel tempering (:mod:`.tempering`), AIS (:mod:`.ais`), hidden-side enumeration
(:mod:`.hidden_enum`), the plateau onset (:mod:`.onset`) and the PCD training that makes the
trained checkpoints (:mod:`.train`). Models and arrays in, numbers out: nothing here knows a family.
"""
