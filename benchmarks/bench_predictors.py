"""asv benchmarks of the built-in predictors (DESIGN §5) on one exact cell: time per cell beside the
quality figure the leaderboard ranks on (largest |log10 Q_pred − log10 Q| over the T grid, dex)."""
import numpy as np

from snrbench.truth import exact
from snrbench.predict import Problem
from snrbench.predict.registry import builtin_entries, instantiate
from snrbench.core.spectral import T_GRID
from snrbench.families import build_data, build_model, load_suite

CELL = "n10m4-b2-bias-s0"  # exact-rbm: a slow mode with weight, where the entries disagree
_ENTRIES = {f"{e.name}:{e.access}": e for e in builtin_entries()}
KEYS = sorted(_ENTRIES)


def _problem(entry):
    cell = next(c for c in load_suite("exact-rbm")[1] if c.label == CELL)
    return Problem(build_model(cell), build_data(cell), T=T_GRID, observables=cell.spec["observables"],
                   access=entry.access, family="exact-rbm", label=cell.label, seed=0, exact_available=True)


class PredictorCell:
    params = KEYS
    param_names = ["entry"]
    timeout = 600

    def setup(self, key):
        self.entry = _ENTRIES[key]
        self.problem = _problem(self.entry)

    def time_predict(self, key):
        instantiate(self.entry).predict(_problem(self.entry))

    def track_max_error_dex(self, key):
        truth = exact.solve(self.problem.model, self.problem.data).log10_q(T_GRID)
        pred = instantiate(self.entry).predict(self.problem)
        return float(np.max(np.abs(pred.log10_q - truth)))

    track_max_error_dex.unit = "dex"
