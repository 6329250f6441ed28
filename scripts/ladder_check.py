"""Ladder check (interim, issue 4): Monte Carlo (R = 1024 replicates, exact starts) vs exact Q(T) on
every cell of the given exact families; prints the CI coverage and the median relative error of Tr Cov.
Usage: .venv/bin/python scripts/ladder_check.py exact-rbm planted   (about 15 min on 2 cores)
To be replaced by `snrbench ladder`, which will store the Monte Carlo ground truth.
"""
import sys, time
import numpy as np
from concurrent.futures import ProcessPoolExecutor
from snrbench.tasks import load_suite, build_model, build_data
from snrbench.exact import solve
from snrbench.montecarlo import mc_q_curve

def one(spec_json):
    import torch; torch.set_num_threads(1)
    from snrbench.tasks import Cell
    c = Cell(spec_json)
    rbm, data = build_model(c), build_data(c)
    sol = solve(rbm, data)
    mc = mc_q_curve(rbm, data, n_replicates=1024, seed=int(c.cell_id[:8], 16) % 2**31, n_boot=200)
    truth = sol.log10_q()
    inside = (mc.ci_low <= truth) & (truth <= mc.ci_high)
    rel = np.abs(mc.trace_cov / sol.trace_cov() - 1)
    return c.label, inside.sum(), len(truth), float(np.median(rel)), rel.tolist()

if __name__ == "__main__":
    t0 = time.time()
    cells = [c for fam in sys.argv[1:] for c in load_suite(fam)[1]]
    with ProcessPoolExecutor(2) as pool:
        res = list(pool.map(one, [c.spec_json for c in cells]))
    ins = sum(r[1] for r in res); tot = sum(r[2] for r in res)
    allrel = np.concatenate([r[4] for r in res])
    print(f"{len(res)} cells, {time.time()-t0:.0f} s: inside 95% CI {ins}/{tot} = {ins/tot:.3f}; median rel err Tr Cov {np.median(allrel):.4f}")
    for r in sorted(res, key=lambda r: r[1])[:8]:
        print(f"  {r[0]:22s} inside {r[1]}/{r[2]} median rel {r[3]:.3f}")
