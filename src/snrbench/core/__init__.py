"""Models and samplers: the RBM and Ising models, the blocked-Gibbs / single-site samplers, the
spectral formulas (``v_T(λ)``, ``Tr Cov ĝ(T)``, ``T*``), autocorrelation and chain diagnostics,
gradient observables, the tempered (base-rate ↔ model) family and the MNIST data reader.

The lowest layer: it imports nothing else of snrbench, and no file-format or plotting code.
"""
