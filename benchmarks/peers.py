"""One table: snrbench's blocked-Gibbs sweep rate beside its floor and beside peer samplers.

Run from the repository root (the peers are the optional extra ``peers``)::

    pip install -e '.[peers]'
    python -m benchmarks.peers            # CPU, the three shapes of DESIGN §8
    python -m benchmarks.peers --device cuda

Per shape (C chains, n visible, m hidden; binary units, float32), all in one run: sweeps/s of
(a) the two matrix products alone, (b) the ``C·(n+m)`` uniforms alone, the limit
``1/(1/a + 1/b)``, then snrbench's ``BlockGibbs.run``, the PyPI package ``rbms``
(``BBRBM.sample_state``) and scikit-learn's ``BernoulliRBM.gibbs`` (CPU only), each as a rate and
as a fraction of the limit. Every contender advances the same C chains of the same model. torch's
CPU generator is serial; snrbench draws from two generators on two threads, so on the CPU the table
also gives (b2), the uniforms drawn that way, and snrbench's fraction of ``1/(1/a + 1/b2)``.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

if __package__ in (None, ""):  # run as a file: make ``benchmarks`` importable
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    from benchmarks.common import SHAPES, Floor, limit_rate, mnist_like_rbm, sweep_rate
else:
    from .common import SHAPES, Floor, limit_rate, mnist_like_rbm, sweep_rate

from snrbench.core.sampler import BlockGibbs

_SWEEPS = 8  # sweeps per timed call (amortises per-call overhead equally for every contender)


def snrbench_step(rbm, C, device):
    s = BlockGibbs(rbm, C, device=device, dtype=torch.float32, seed=0)
    return lambda: s.run(_SWEEPS)


def rbms_step(rbm, C, device):
    from rbms.bernoulli_bernoulli.classes import BBRBM

    kw = dict(device=device, dtype=torch.float32)
    params = BBRBM(torch.tensor(rbm.W, **kw), torch.tensor(rbm.a, **kw), torch.tensor(rbm.b, **kw))
    chains = {"visible": (torch.rand(C, rbm.n_visible, **kw) < 0.5).float(), "weights": torch.ones(C, **kw)}

    def step():
        nonlocal chains
        chains = params.sample_state(chains, n_steps=_SWEEPS)

    return step


def sklearn_step(rbm, C, device):
    if torch.device(device).type != "cpu":
        return None
    from sklearn.neural_network import BernoulliRBM

    sk = BernoulliRBM(n_components=rbm.n_hidden, random_state=0)
    sk.components_ = np.ascontiguousarray(rbm.W.T, dtype=np.float32)
    sk.intercept_hidden_ = rbm.b.astype(np.float32)
    sk.intercept_visible_ = rbm.a.astype(np.float32)
    sk.random_state_ = np.random.RandomState(0)
    state = {"v": (np.random.default_rng(0).random((C, rbm.n_visible)) < 0.5).astype(np.float32)}

    def step():
        for _ in range(_SWEEPS):
            state["v"] = sk.gibbs(state["v"])

    return step


PEERS = {"snrbench": snrbench_step, "rbms": rbms_step, "scikit-learn": sklearn_step}


def measure(C: int, n: int, m: int, device="cpu", peers=PEERS) -> dict:
    """Sweeps/s of the floor parts, the limit and every contender at one shape."""
    floor = Floor(C, n, m, device=device)
    row = {"C": C, "n": n, "m": m, "a_matmuls": sweep_rate(floor.matmuls, 1), "b_uniforms": sweep_rate(floor.uniforms, 1)}
    row["limit"] = limit_rate(row["a_matmuls"], row["b_uniforms"])
    if torch.device(device).type == "cpu":
        row["b2_uniforms"] = sweep_rate(floor.uniforms_two_threads, 1)
        row["limit2"] = limit_rate(row["a_matmuls"], row["b2_uniforms"])
    rbm = mnist_like_rbm(n, m)
    for name, make in peers.items():
        try:
            step = make(rbm, C, device)
        except ImportError as e:
            print(f"  {name}: not installed ({e.name}); `pip install -e '.[peers]'`", file=sys.stderr)
            step = None
        row[name] = sweep_rate(step, _SWEEPS) if step is not None else float("nan")
    return row


def table(rows, names) -> str:
    head = f"{'C':>5} {'n':>4} {'m':>4} | {'(a) mm×2':>10} {'(b) unif':>10} {'limit':>10} |"
    head += "".join(f" {nm:>18}" for nm in names)
    lines = [head, "-" * len(head)]
    for r in rows:
        s = f"{r['C']:>5} {r['n']:>4} {r['m']:>4} | {r['a_matmuls']:>10.0f} {r['b_uniforms']:>10.0f} {r['limit']:>10.0f} |"
        for nm in names:
            s += f" {r[nm]:>9.0f} ({r[nm] / r['limit']:4.2f})" if np.isfinite(r[nm]) else f" {'n/a':>18}"
        lines.append(s)
    lines.append("sweeps/s; (fraction of the limit 1/(1/a + 1/b)).")
    if all("limit2" in r for r in rows):
        lines.append("Drawing the uniforms from two generators on two threads (b2), the stricter limit 1/(1/a + 1/b2):")
        for r in rows:
            lines.append(f"  {r['C']}x{r['n']}x{r['m']}: b2 = {r['b2_uniforms']:.0f}/s, limit2 = {r['limit2']:.0f}/s, "
                         f"snrbench / limit2 = {r['snrbench'] / r['limit2']:.2f}")
    sn = [r for r in rows if np.isfinite(r["snrbench"])]
    for nm in names:
        if nm != "snrbench" and all(np.isfinite(r[nm]) for r in sn):
            lines.append(f"snrbench / {nm}: " + ", ".join(f"{r['snrbench'] / r[nm]:.2f}×" for r in sn))
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--shape", action="append", help="C,n,m (repeatable; default: the three DESIGN §8 shapes)")
    args = ap.parse_args(argv)
    shapes = [tuple(int(x) for x in s.split(",")) for s in args.shape] if args.shape else SHAPES
    dev = torch.device(args.device)
    what = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {what}")
    rows = [measure(C, n, m, device=args.device) for C, n, m in shapes]
    print(table(rows, list(PEERS)))


if __name__ == "__main__":
    main()
