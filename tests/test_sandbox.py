"""The sandbox's grant carving: a granted folder that holds a blocked one is granted only around it."""
from snrbench.predict.sandbox import _carve


def test_a_blocked_folder_is_carved_out_of_a_grant(tmp_path):
    site = tmp_path / "site-packages"
    for p in ("numpy/core", "snrbench/_data/results/ground_truth", "snrbench/_data/predictors", "snrbench/store"):
        (site / p).mkdir(parents=True)
    (site / "snrbench" / "__init__.py").write_text("")
    blocked = [str((site / "snrbench" / "_data" / "results").resolve())]
    grants = dict(_carve(str(site), blocked))
    r = lambda p: str((site / p).resolve()) if p else str(site.resolve())  # noqa: E731
    assert grants[r("")] is False and grants[r("snrbench")] is False and grants[r("snrbench/_data")] is False
    assert grants[r("numpy")] is True and grants[r("snrbench/store")] is True
    assert grants[r("snrbench/__init__.py")] is True and grants[r("snrbench/_data/predictors")] is True
    assert not any(p.startswith(blocked[0]) for p in grants)  # nothing at or under the blocked folder
    assert _carve(str(site / "snrbench" / "_data" / "results" / "ground_truth"), blocked) == []
    assert _carve(str(tmp_path / "absent"), blocked) == []
