"""snrbench.load: the stored tables as DataFrames that keep the declared units."""
import shutil
from pathlib import Path

import pytest

import snrbench
from snrbench.store import ResultsError
from snrbench.store.schema import TABLES

RESULTS = Path(__file__).resolve().parents[1] / "results"


def test_load_keeps_units_descriptions_and_file_metadata():
    df = snrbench.load("ground_truth", "exact-rbm", results=RESULTS)
    assert set(df.family) == {"exact-rbm"} and len(df) == 48 * 17
    declared = {c.name: c for c in TABLES["ground_truth"]}
    assert df.attrs["units"]["T"] == declared["T"].unit == "sweeps"
    assert df.attrs["description"]["log10_q"] == declared["log10_q"].doc
    assert df.attrs["metadata"]["ground_truth/exact-rbm.parquet"]["family"] == "exact-rbm"


def test_load_filters_and_concatenates():
    preds = snrbench.load("predictions", "planted", results=RESULTS)
    assert set(preds.family) == {"planted"} and preds.predictor.nunique() >= 5
    every = snrbench.load("ground_truth", results=RESULTS)
    assert {"exact-rbm", "planted", "ising", "mnist"} <= set(every.family)


def test_load_names_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="unknown kind 'truth'; known: ground_truth"):
        snrbench.load("truth")
    with pytest.raises(ResultsError, match="no ladder tables under"):
        snrbench.load("ladder", results=tmp_path)
    shutil.copytree(RESULTS, tmp_path / "r")
    (tmp_path / "r" / "scores.parquet").write_bytes(b"not parquet")
    with pytest.raises(ResultsError, match="checksum"):
        snrbench.load("scores", results=tmp_path / "r")
