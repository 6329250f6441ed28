"""Hidden-side enumeration (MNIST m = 16 anchor) against brute force over the visible states."""
import numpy as np
import pytest
from scipy.special import logsumexp

from snrbench.truth import hidden_enum
from snrbench.core.model import RBM, all_states
from snrbench.core.observables import gradient_observables


def rbm_of(units, seed=3, n=7, m=5):
    rng = np.random.default_rng(seed)
    return RBM(0.8 * rng.standard_normal((n, m)), 0.4 * rng.standard_normal(n), 0.4 * rng.standard_normal(m), units)


@pytest.mark.parametrize("observables", ["weights", "weights+biases"])
@pytest.mark.parametrize("units", ["binary", "spin"])
def test_moments_match_visible_enumeration(units, observables):
    """log Z and E_p f from the hidden side equal sums over all 2^n visible states (chunked: 7 states per chunk)."""
    rbm = rbm_of(units)
    V = all_states(rbm.n_visible, units)
    lq = rbm.log_marginal_visible(V)
    lz = logsumexp(lq)
    p = np.exp(lq - lz)
    assert hidden_enum.log_partition(rbm, chunk=7) == pytest.approx(lz, rel=0, abs=1e-12)
    want = p @ gradient_observables(rbm, V, observables)
    np.testing.assert_allclose(hidden_enum.model_mean_observables(rbm, observables, chunk=7), want, rtol=0, atol=1e-13)
    data = V[[0, 5, 17, 40]]
    g = gradient_observables(rbm, data, observables).mean(0) - want
    assert hidden_enum.grad_norm2(rbm, data, observables) == pytest.approx(g @ g, rel=1e-12)


def test_hidden_probabilities_and_samples():
    """log p(h) sums to one and matches the joint summed over v; exact samples have E v within 4 SE."""
    rbm = rbm_of("binary", n=6, m=4)
    V, H = all_states(6, "binary"), all_states(4, "binary")
    joint = V @ rbm.W @ H.T + (V @ rbm.a)[:, None] + (H @ rbm.b)[None, :]
    ph = np.exp(logsumexp(joint, axis=0) - logsumexp(joint))
    np.testing.assert_allclose(np.exp(hidden_enum.log_prob_hidden(rbm, chunk=3)), ph, rtol=1e-12)
    R = 20_000
    v = hidden_enum.sample_visible(rbm, R, np.random.default_rng(0))
    Ev = hidden_enum.model_mean_observables(rbm, "weights+biases")[24:30]
    assert np.all(np.abs(v.mean(0) - Ev) < 4 * np.sqrt(Ev * (1 - Ev) / R))


def test_too_many_hidden_units_is_refused():
    with pytest.raises(ValueError, match="m = 21"):
        hidden_enum.log_partition(RBM(np.zeros((3, 21)), None, None, "binary"))
