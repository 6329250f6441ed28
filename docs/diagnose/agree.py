"""Standard against certified: the per-T difference of log10 Q between two diagnose reports and its z
from their 95% CIs (σ = CI width / 3.92), read off the reports' 2-decimal tables.

    python docs/diagnose/agree.py A.md B.md [SECTION_A] [SECTION_B]    # e.g. "update 2000" "update 2000"
"""
import re
import sys

import numpy as np

_ROW = re.compile(r"^\| (\d+) \| (-?[\d.]+|—) \| \[(-?[\d.]+|−∞|—), (-?[\d.]+|—)\]", re.M)


def _value(s: str) -> float:
    return -np.inf if s == "−∞" else (np.nan if s == "—" else float(s))


def table(path: str, section: str | None = None) -> np.ndarray:
    """``(n_T, 3)``: log10 Q, CI low, CI high of the report's (section's) table."""
    text = open(path).read()
    if section:
        text = text[text.index(f"## {section} "):]
        end = text.find("\n## ", 5)
        text = text if end < 0 else text[:end]
    return np.array([[_value(x) for x in row[1:]] for row in _ROW.findall(text)])


if __name__ == "__main__":
    a = table(sys.argv[1], sys.argv[3] if len(sys.argv) > 3 else None)
    b = table(sys.argv[2], sys.argv[4] if len(sys.argv) > 4 else None)
    d = a[:, 0] - b[:, 0]
    with np.errstate(invalid="ignore"):
        z = d / np.hypot((a[:, 2] - a[:, 1]) / 3.92, (b[:, 2] - b[:, 1]) / 3.92)
    ok = np.isfinite(z)
    print(f"max |Δ log10 Q| = {np.nanmax(np.abs(d)):.3f} dex, max |z| = {np.max(np.abs(z[ok])):.2f} over {ok.sum()} T")
