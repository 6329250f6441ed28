"""The one-sentence verdict that opens every diagnosis (and is ``verdict`` in its JSON).

Which evidence wins, in this order:

1. a stop at ``--max-minutes`` (what was not measured is not judged);
2. a failed check: an equilibration check that failed, or certified start generators that disagree,
   makes the curve "not certified" whatever it says;
3. along a training archive, the plateau rule on ``Q_train = C·Q(k)`` with the training's (C, k):
   an onset only after ``Q_train`` reached 1 (else "never reached 1: the sampler limits training
   from the start");
4. for one model: the cheapest (C, k) with ``C·Q(k) ≥ target`` (Q at the lower end of its CI), and
   whether the training's own (C, k) reaches it.

A forecast (``--speed quick``) says so in its first words. Warnings below the verdict add detail,
never a contrary conclusion (:func:`snrbench.diagnosis.curve.curve_from_starts` words the mixing
flag of equilibrium starts accordingly).
"""
from __future__ import annotations

import math

__all__ = ["verdict", "onset_status", "NEVER_REACHED"]

NEVER_REACHED = "Q_train never reached 1: the sampler limits training from the start"


def onset_status(log10_q_train_along) -> tuple[str, int | None]:
    """``("onset" | "never reached 1" | "no onset", index)`` along an archive's updates: the onset is
    the first ``Q_train < 1`` after one ``≥ 1`` (:func:`snrbench.truth.onset.onset_index`), and only then."""
    q = [(-math.inf if x is None else x) for x in log10_q_train_along]
    first = next((i for i, x in enumerate(q) if x >= 0.0), None)
    if first is None:
        return "never reached 1", None
    later = next((i for i in range(first, len(q)) if q[i] < 0.0), None)
    return ("no onset", None) if later is None else ("onset", later)


def _plan_words(p, target: float) -> str:
    return (f"C = {p.chains:,} chain{'s' if p.chains != 1 else ''} and k = {p.sweeps:,} "
            f"sweep{'s' if p.sweeps != 1 else ''} per step")


def _one(d, target: float, train) -> str:
    if d.best is None:
        if not (d.curve.grad_norm2 > 0) and math.isfinite(d.curve.grad_norm2):
            return ("the gradient has no measured signal (‖g‖² ≤ 0: the model matches the data's correlations "
                    "within the noise), so no number of chains brings Q_train to " f"{target:g}")
        return f"no (C, k) on the grid reaches Q_train ≥ {target:g}: not trainable by this measure within the chain cap"
    s = f"with {_plan_words(d.best, target)} your gradient SNR is ≥ {target:g}: trainable by this measure"
    if train[0] and train[1] and d.log10_q_train is not None:
        q = 10 ** d.log10_q_train if d.log10_q_train > -math.inf else 0.0
        verb = "reaches" if q >= target else "does not reach"
        s += f"; your training's own C = {train[0]}, k = {train[1]} {verb} it (Q_train = {q:.3g})"
    return s


def verdict(diag) -> str:
    """The verdict sentence of a :class:`~snrbench.diagnosis.diagnose.Diagnosis` (module docstring)."""
    models = diag.models
    lead = ""
    if diag.speed == "quick":
        lead = (f"Forecast, not a measurement ({models[0].curve.method if models else 'an entry'}; "
                "confirm with --speed standard before relying on it): ")
    if diag.stopped:
        done = f"{len(models)} of {diag.n_models} model{'s' if diag.n_models != 1 else ''}"
        if not models:
            return f"Stopped at --max-minutes before any model was finished ({diag.stopped}); nothing is judged."
        lead = f"Stopped at --max-minutes after {done} ({diag.stopped}); on those: " + lead
    bad = [d for d in models if d.curve.equilibrated is False or (d.agreement is not None and not d.agreement.agree)]
    if bad:
        why = ("the certified start generators disagree" if any(d.agreement is not None and not d.agreement.agree
                                                                for d in bad) else "the equilibration check failed")
        which = ", ".join(d.label for d in bad[:3]) + (" …" if len(bad) > 3 else "")
        return (lead + f"Not certified: {why} for {which}, so its Q(T) may be biased and no plan is "
                "recommended from it; rerun with more tempering rounds (--rounds) or rungs (--rungs).")
    train = (diag.train_chains, diag.train_k)
    cert = "; certified: two independent start generators agree" if diag.speed == "certified" else ""
    if len(models) > 1 and diag.train_chains and diag.train_k:
        status, onset_update = diag.onset_status, diag.onset_update
        along = f"Along the {len(models)} saved updates with the training's C = {diag.train_chains}, k = {diag.train_k}: "
        if status == "never reached 1":
            return lead + along + NEVER_REACHED + cert + "."
        if status == "no onset":
            return lead + along + f"Q_train reached 1 and stayed there: no plateau among the saved updates{cert}."
        return lead + along + f"Q_train reached 1, then fell below it: forecast plateau onset at update {onset_update}{cert}."
    last = models[-1]
    s = _one(last, diag.target, train)
    if len(models) > 1:
        s = f"at {last.label} (the last of {len(models)} models), " + s
    return lead + (s if lead else s[0].upper() + s[1:]) + cert + "."
