"""The blocked-Gibbs core against the dense kernel, and its in-place, stream-stable mechanics."""
import numpy as np
import pytest
import torch

from reference import dense_v_chain
from snrbench.core.model import RBM, all_states
from snrbench.core.observables import gradient_observables
from snrbench.core.sampler import BlockGibbs


def small_rbm(units, seed=7, n=3, m=2, beta=1.2):
    rng = np.random.default_rng(seed)
    return RBM(beta * rng.standard_normal((n, m)), 0.5 * rng.standard_normal(n), 0.5 * rng.standard_normal(m), units)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("units", ["spin", "binary"])
def test_one_and_two_sweeps_follow_the_dense_kernel(units, dtype):
    """Chains all started at one state: the state frequencies after 1 and 2 sweeps match K and K²
    rows within 5 binomial SE (the ±1 folding into the product and the u < σ draw are both exercised)."""
    rbm = small_rbm(units)
    V, _, K = dense_v_chain(rbm)
    R = 40_000
    start = 5
    s = BlockGibbs(rbm, R, dtype=dtype, seed=3, v0=np.repeat(V[start:start + 1], R, axis=0))
    codes = {tuple(v): i for i, v in enumerate(V)}
    for row in (K[start], (K @ K)[start]):
        s.sweep()
        counts = np.bincount([codes[tuple(v)] for v in s.v.cpu().numpy()], minlength=len(V))
        se = np.sqrt(row * (1 - row) / R)
        assert np.all(np.abs(counts / R - row) < 5 * se + 1e-12)


@pytest.mark.parametrize("units", ["spin", "binary"])
def test_basis_features_and_observables_match_the_numpy_model(units, rng):
    """``E[h|v]`` from the kept hidden probabilities equals the model's formula; f equals
    :func:`gradient_observables`; the chain mean as a product of sums equals the mean of f."""
    rbm = small_rbm(units, n=6, m=4)
    s = BlockGibbs(rbm, 50, dtype=torch.float64, seed=1)
    s.run(3)
    v = s.v.numpy()
    np.testing.assert_allclose(s.basis_features().numpy(), rbm.mean_from_field(rbm.hidden_field(v)), rtol=0, atol=1e-14)
    np.testing.assert_allclose(s.hidden_field().numpy(), rbm.hidden_field(v), rtol=0, atol=1e-13)
    for which in ("weights", "weights+biases"):
        f = s.observables(which)
        np.testing.assert_allclose(f.numpy(), gradient_observables(rbm, v, which), rtol=0, atol=1e-14)
        np.testing.assert_allclose(s.mean_observables(which).numpy(), f.mean(0).numpy(), rtol=0, atol=1e-14)


@pytest.mark.parametrize("n_chains", [8, 300])  # one chain group; two groups swept concurrently by run()
def test_run_equals_repeated_sweeps_whatever_the_threads(n_chains):
    """``run(n)`` and n calls of ``sweep()`` consume the same streams (across uniform-block refills), and
    the chains do not depend on the number of torch threads."""
    rbm = small_rbm("binary", n=5, m=3)
    a, b, c = (BlockGibbs(rbm, n_chains, seed=4) for _ in range(3))
    n = 3 * a._groups[0].block + 5
    a.run(n)
    for _ in range(n):
        b.sweep()
        b.basis_features()  # reading features between sweeps must not change the streams
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        c.run(n)
    finally:
        torch.set_num_threads(threads)
    assert torch.get_num_threads() == threads
    assert torch.equal(a.v, b.v) and torch.equal(a.v, c.v) and a.n_sweeps == b.n_sweeps == n
    assert len(a._groups) == (2 if n_chains >= 128 else 1)


def test_sweeps_write_in_place_and_states_stay_valid():
    """No per-sweep allocation: state, probability and uniform buffers keep their storage; units stay 0/1 or ±1."""
    for units, allowed in (("spin", {-1.0, 1.0}), ("binary", {0.0, 1.0})):
        s = BlockGibbs(small_rbm(units, n=9, m=4), 256, seed=0)
        bufs = [s._xa, s._ya, s._ph, s._pv] + [g.u for g in s._groups]
        ptrs = [t.data_ptr() for t in bufs]
        s.run(200)
        s.sweep()
        assert [t.data_ptr() for t in bufs] == ptrs
        assert set(np.unique(s.v.numpy())) <= allowed
        assert s.v.dtype == torch.float32  # float32 by default
        assert bool((s._xa[:, -1] == 1).all() and (s._ya[:, -1] == 1).all())  # the bias columns


def test_state_and_dtype_errors_name_the_problem():
    rbm = small_rbm("spin")
    with pytest.raises(ValueError, match="shape"):
        BlockGibbs(rbm, 4, v0=np.ones((3, 3)))
    with pytest.raises(ValueError, match="spin states"):
        BlockGibbs(rbm, 2, v0=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="dtype"):
        BlockGibbs(rbm, 2, dtype=torch.float16)
    with pytest.raises(TypeError, match="RBM"):
        BlockGibbs(object(), 2)


def test_uniform_start_covers_all_states():
    """The default start is uniform over the 2^n visible states (chi-square-sized deviation check)."""
    rbm = small_rbm("spin")
    R = 16_000
    V = all_states(3, "spin")
    codes = {tuple(v): i for i, v in enumerate(V)}
    counts = np.bincount([codes[tuple(v)] for v in BlockGibbs(rbm, R, seed=9).v.numpy()], minlength=8)
    assert np.all(np.abs(counts / R - 1 / 8) < 5 * np.sqrt((1 / 8) * (7 / 8) / R))


def test_concurrent_run_works_in_a_forked_child():
    """The thread pool of the parent does not survive a fork; a child process builds its own."""
    import multiprocessing as mp

    import time

    from snrbench.core.sampler import _pool

    rbm = small_rbm("binary", n=5, m=3)
    list(_pool().map(time.sleep, [0.05, 0.05]))  # the parent's pool now has two idle threads
    with mp.get_context("fork").Pool(1) as pool:
        got = pool.apply_async(_child_run, (rbm,)).get(timeout=20)
    want = BlockGibbs(rbm, 256, seed=2)
    want.run(4)
    np.testing.assert_array_equal(got, want.v.numpy())


def _child_run(rbm):
    s = BlockGibbs(rbm, 256, seed=2)
    s.run(4)
    return s.v.numpy()


@pytest.mark.parametrize("n_chains", [8, 256])  # 256: two chain groups on the CPU
@pytest.mark.parametrize("units", ["spin", "binary"])
def test_exchange_swaps_the_masked_chains_and_the_next_sweep_uses_them(units, n_chains):
    """``exchange`` = set_state of the swapped states (both samplers), including the cached p(h | v)."""
    rbm = small_rbm(units, n=5, m=3)
    a, b = BlockGibbs(rbm, n_chains, seed=1), BlockGibbs(rbm, n_chains, seed=2)
    a.run(3)
    b.run(5)
    a.sweep()
    a.basis_features(), b.basis_features()  # both now hold p(h | v) cached for the current state
    mask = torch.arange(n_chains) % 3 != 1
    va, vb = a.v, b.v
    want_a, want_b = torch.where(mask[:, None], vb, va), torch.where(mask[:, None], va, vb)
    ref_a, ref_b = BlockGibbs(rbm, n_chains, seed=1), BlockGibbs(rbm, n_chains, seed=2)  # same streams, positions
    ref_a.run(4)
    ref_b.run(5)
    a.exchange(b, mask)
    assert torch.equal(a.v, want_a) and torch.equal(b.v, want_b)
    ref_a.set_state(want_a)
    ref_b.set_state(want_b)
    a.sweep(), b.sweep(), ref_a.sweep(), ref_b.sweep()
    assert torch.equal(a.v, ref_a.v) and torch.equal(b.v, ref_b.v)
    with pytest.raises(ValueError, match="differ"):
        a.exchange(BlockGibbs(small_rbm(units, n=6, m=3), n_chains), mask)
    with pytest.raises(ValueError, match="mask"):
        a.exchange(b, mask[:-1])
    with pytest.raises(ValueError, match="mask"):
        a.exchange(b, mask.long())
