"""Command line: ``snrbench {run,groundtruth,verify,summary,plot}``."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

__all__ = ["main"]

DEFAULT_FAMILIES = ("exact-rbm",)


def _cmd_groundtruth(args) -> int:
    from .groundtruth import generate

    for family in args.family:
        t0 = time.perf_counter()
        out = generate(family, args.results, force=args.force, workers=args.workers, progress=not args.quiet)
        if out["skipped"]:
            print(f"{family}: {out['cells']} cells stored and verified; nothing to do (use --force to regenerate)")
        else:
            print(f"{family}: {out['computed']} of {out['cells']} cells computed with {out['workers']} worker(s) "
                  f"in {time.perf_counter() - t0:.1f} s")
    return 0


def _cmd_verify(args) -> int:
    from .store import verify

    problems = verify(Path(args.results))
    if problems:
        print(f"snrbench verify: {len(problems)} problem(s) under {args.results}:", file=sys.stderr)
        for p in problems:
            print(f"  FAIL {p}", file=sys.stderr)
        return 1
    print(f"snrbench verify: all files under {args.results} match the manifest and the schema")
    return 0


def _cmd_summary(args) -> int:
    import pandas as pd

    from .report import cell_summary

    for family in args.family:
        df = cell_summary(args.results, family)
        cols = ["label", "log10_q_T1", "log10_q_Tmax", "t_star_1", "tau_grad", "tau_m", "tau_gap",
                "gap_over_grad", "m_over_grad", "spectral_gap", "observable_gap"]
        with pd.option_context("display.width", 250, "display.max_rows", 500, "display.float_format", "{:.4g}".format):
            print(f"\n{family}: {len(df)} cells (τ in sweeps; gaps per sweep; T*(1) = first T with Q ≥ 1)")
            print(df[cols].to_string(index=False))
    return 0


def _cmd_plot(args) -> int:
    from .report import plot_q_curves

    for family in args.family:
        out = plot_q_curves(args.results, family, Path(args.out) / f"q_curves_{family}.png")
        print(f"wrote {out}")
    return 0


def _cmd_run(args) -> int:
    """The main job: ground truth for the default suite (skipped when stored and verified) → figures → summary."""
    rc = _cmd_groundtruth(args)
    rc = rc or _cmd_verify(args)
    rc = rc or _cmd_plot(args)
    return rc or _cmd_summary(args)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="snrbench", description=__doc__)
    p.add_argument("--results", default="results", help="results folder (default: results)")
    sub = p.add_subparsers(dest="cmd", required=True)

    def fam(sp):
        sp.add_argument("--family", action="append", default=None,
                        help=f"task family (repeatable; default: {', '.join(DEFAULT_FAMILIES)})")

    for name, fn, helptext in (
        ("run", _cmd_run, "main job: ground truth → verify → figures → summary table"),
        ("groundtruth", _cmd_groundtruth, "generate (or resume) exact ground truth for a family"),
        ("verify", _cmd_verify, "check stored results against the manifest checksums and the schema"),
        ("summary", _cmd_summary, "print the per-cell summary table"),
        ("plot", _cmd_plot, "write Q(T) figures"),
    ):
        sp = sub.add_parser(name, help=helptext)
        sp.set_defaults(fn=fn)
        if name != "verify":
            fam(sp)
        if name in ("run", "groundtruth"):
            sp.add_argument("--force", action="store_true", help="recompute even when stored results verify")
            sp.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
            sp.add_argument("--quiet", action="store_true", help="no progress bar")
        if name in ("run", "plot"):
            sp.add_argument("--out", default="leaderboard", help="figure folder (default: leaderboard)")
    args = p.parse_args(argv)
    if hasattr(args, "family") and not args.family:
        args.family = list(DEFAULT_FAMILIES)
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        print("\ninterrupted: finished cells are kept under results/.partial and the next run resumes; "
              "stored results are unchanged", file=sys.stderr)
        return 130
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"snrbench {args.cmd}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
