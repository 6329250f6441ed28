"""asv benchmarks of the exact solver (DESIGN §2): per-cell time and memory at the exact-rbm shapes and
at n = 20, m = 8, where the work is on the 2^8 hidden states and the 2^20 visible states are summed
over in chunks (the small-side trick)."""
import json


from snrbench.truth import exact
from snrbench.families import build_model, load_suite

SHAPES = ["n10m4", "n12m6", "n20m8"]


def exact_rbm_model(shape: str, beta: float = 2.0, symmetric: bool = False):
    """The exact-rbm recipe (Mattis + disorder, spin units, seed 0) at any shape ``n{n}m{m}``."""
    n, m = (int(x) for x in shape[1:].split("m"))
    spec = json.loads(load_suite("exact-rbm")[1][0].spec_json)
    spec.update(n_visible=n, n_hidden=m, beta=beta, symmetric=symmetric, seed=0)
    return build_model(spec)


class ExactSolve:
    """``exact.solve`` of one biased β = 2 cell (no data: the spectrum and mode weights)."""

    params = SHAPES
    param_names = ["shape"]
    timeout = 600

    def setup(self, shape):
        self.rbm = exact_rbm_model(shape)

    def time_solve(self, shape):
        exact.solve(self.rbm)

    def peakmem_solve(self, shape):
        exact.solve(self.rbm)

    def track_eig_check(self, shape):
        """Largest |arbitrary-precision − float64| eigenvalue difference (≈ 1e-15 when sane)."""
        return float(exact.solve(self.rbm).eig_check)

    track_eig_check.unit = "|Δλ|"


class ExactSpectralGap:
    """``exact.spectral_gap`` alone (the cheapest white-box query)."""

    params = SHAPES[:2]
    param_names = ["shape"]

    def setup(self, shape):
        self.rbm = exact_rbm_model(shape)

    def time_spectral_gap(self, shape):
        exact.spectral_gap(self.rbm)

    def track_gap(self, shape):
        return float(exact.spectral_gap(self.rbm))

    track_gap.unit = "1 − λ₁ per sweep"
