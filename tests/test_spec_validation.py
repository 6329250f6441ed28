"""Suite specs are validated on load: every key of a suite TOML against its family's declared keys
(kind, range, the exact solvers' limits), before any cell is built, with a message naming the file
and the key. Property tests: malformed specs of each built-in family are refused, valid perturbations
load."""
from __future__ import annotations

import copy
import difflib
import json
import math
import tomllib

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from snrbench.core.ising import IsingModel
from snrbench.core.model import RBM, all_states
from snrbench.families import TaskSpecError, get, load_suite, suite_path
from snrbench.families._exact import MAX_ENUMERATED
from snrbench.truth import exact, exact_ising

FAMILIES = ("exact-rbm", "planted", "ising", "mnist")
DOCS = {f: tomllib.loads(suite_path(f).read_text()) for f in FAMILIES}
# mnist: one checkpoint per hidden size, so that a valid spec loads fast (the shipped checkpoints)
DOCS["mnist"]["grid"].update(hidden=[16, 64], updates=[0, 16])
SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
NAMES = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)


# -- writing a document back as TOML ------------------------------------------------------------
def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else "inf" if v == math.inf else "-inf" if v == -math.inf else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # printable ASCII only (the strategies): a TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(map(_value, v)) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def dumps(doc: dict) -> str:
    """TOML of ``doc``: its non-table keys first, then one ``[table]`` per dict of dicts' owner; a
    table holding a scalar in the place of a dict (a malformed spec) is written as that scalar."""
    tables = {k: v for k, v in doc.items() if isinstance(v, dict)}
    lines = [f"{json.dumps(k)} = {_value(v)}" for k, v in doc.items() if k not in tables]
    for name, table in tables.items():
        lines += ["", f"[{json.dumps(name)}]"] + [f"{json.dumps(k)} = {_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def write(tmp_path, doc: dict, name: str = "x.toml"):
    path = tmp_path / name
    path.write_text(dumps(doc))
    return path


def refused(tmp_path, doc: dict, *words: str) -> str:
    """Load ``doc`` from a file; assert a TaskSpecError whose message names the file and each word."""
    path = write(tmp_path, doc)
    with pytest.raises(TaskSpecError) as info:
        load_suite(path)
    msg = str(info.value)
    assert str(path) in msg, msg
    for w in words:
        assert w in msg, (w, msg)
    return msg


def declared(family: str) -> dict[str, dict]:
    return get(family).keys


@pytest.mark.parametrize("family", FAMILIES)
def test_the_toml_writer_round_trips_and_every_suite_declares_its_keys(family, tmp_path):
    doc = DOCS[family]
    assert tomllib.loads(dumps(doc)) == doc
    keys = declared(family)
    assert set(doc) == {"family", "suite", "description"} | set(keys)
    for table, rules in keys.items():
        assert set(doc[table]) <= set(rules), table
    assert load_suite(write(tmp_path, doc))[1]


# -- the exact solvers' limits are the solvers' own ---------------------------------------------
def test_the_limits_the_loader_states_are_the_solvers():
    assert exact.MAX_SMALL_SIDE == 12 and exact_ising.MAX_SPINS == 14 and MAX_ENUMERATED == 26
    k = exact.MAX_SMALL_SIDE + 1
    with pytest.raises(ValueError, match="smaller side"):
        exact.solve(RBM(np.zeros((k, k))))  # refused before any enumeration
    with pytest.raises(ValueError, match="spins"):
        exact_ising.eigensystem(IsingModel(np.zeros((exact_ising.MAX_SPINS + 1,) * 2)))
    with pytest.raises(ValueError, match="refusing to enumerate"):
        all_states(MAX_ENUMERATED + 1, "spin")


@pytest.mark.parametrize("family", ["exact-rbm", "planted"])
@SETTINGS
@given(data=st.data())
def test_oversize_exact_rbm_shapes_are_refused_at_load(family, tmp_path, data):
    small = st.integers(1, exact.MAX_SMALL_SIDE)
    big_small_side = st.tuples(st.integers(exact.MAX_SMALL_SIDE + 1, 64), st.integers(exact.MAX_SMALL_SIDE + 1, 64))
    big_large_side = st.tuples(small, st.integers(MAX_ENUMERATED + 1, 200)).flatmap(
        lambda t: st.sampled_from([t, t[::-1]]))
    n, m = data.draw(st.one_of(big_small_side, big_large_side))
    doc = copy.deepcopy(DOCS[family])
    doc["grid"]["shapes"] = [[6, 3], [n, m]]
    if min(n, m) > exact.MAX_SMALL_SIDE:  # the solver diagonalises the smaller side
        words = f"2^{min(n, m)} states on the smaller side", f"2^{exact.MAX_SMALL_SIDE}"
    else:  # and enumerates the larger one
        words = f"2^{max(n, m)} states on the larger side", f"2^{MAX_ENUMERATED}"
    refused(tmp_path, doc, "[grid]", "'shapes'", f"[{n}, {m}]", f"n = {n} visible with m = {m} hidden", *words,
            "use a Monte Carlo family")


@SETTINGS
@given(N=st.integers(exact_ising.MAX_SPINS + 1, 64))
def test_oversize_ising_models_are_refused_at_load(tmp_path, N):
    doc = copy.deepcopy(DOCS["ising"])
    doc["grid"]["sizes"] = [8, N]
    refused(tmp_path, doc, "[grid]", "'sizes'", f"N = {N} spins", f"2^{exact_ising.MAX_SPINS}", "Monte Carlo")


# -- malformed specs ----------------------------------------------------------------------------
def _tables(family: str) -> list[str]:
    return [""] + list(declared(family))


def _table(doc: dict, name: str) -> dict:
    return doc if name == "" else doc[name]


def _known(family: str, table: str) -> set[str]:
    return {"family", "suite", "description"} | set(declared(family)) if table == "" else set(declared(family)[table])


@pytest.mark.parametrize("family", FAMILIES)
@SETTINGS
@given(data=st.data(), value=st.one_of(st.integers(-5, 5), st.booleans(), st.text("abc", max_size=3)))
def test_unknown_keys_are_refused_with_a_did_you_mean(family, tmp_path, data, value):
    table = data.draw(st.sampled_from(_tables(family)), label="table")
    known = _known(family, table)
    key = data.draw(st.one_of(NAMES, st.sampled_from(sorted(known)).map(lambda k: k + "z")), label="key")
    assume(key not in known)
    doc = copy.deepcopy(DOCS[family])
    _table(doc, table)[key] = value
    msg = refused(tmp_path, doc, f"unknown key {key!r}", f"[{table}]" if table else "the header")
    close = difflib.get_close_matches(key, sorted(known), n=1)
    assert (f"did you mean {close[0]!r}?" in msg) if close else ("known:" in msg)


def _required(family: str, table: str) -> list[str]:
    rules = declared(family)[table] if table else dict.fromkeys(["family", "suite", *declared(family)], None)
    if family == "mnist" and table == "tempering":  # required by the method named (trajectory here)
        return [k for k in DOCS[family]["tempering"] if k != "method"]
    return [k for k, r in rules.items() if r is None or r.required]


@pytest.mark.parametrize("family", FAMILIES)
@SETTINGS
@given(data=st.data())
def test_missing_keys_are_named(family, tmp_path, data):
    table = data.draw(st.sampled_from(_tables(family)))
    key = data.draw(st.sampled_from(_required(family, table)))
    doc = copy.deepcopy(DOCS[family])
    del _table(doc, table)[key]
    refused(tmp_path, doc, f"missing key {key!r}")


def _kind_ok(kind, v) -> bool:
    """The test's own reading of a key's kind (a float key takes an int, nothing takes a bool but bool)."""
    if kind is float:
        return type(v) in (int, float)
    return type(v) is kind


ANY = st.one_of(st.integers(-3, 3), st.floats(-3, 3).filter(lambda x: x != int(x)), st.booleans(),
                st.text("xyz", max_size=3), st.lists(st.integers(0, 3), max_size=2),
                st.dictionaries(st.sampled_from("ab"), st.integers(0, 3), max_size=1))


@pytest.mark.parametrize("family", FAMILIES)
@SETTINGS
@given(data=st.data(), value=ANY)
def test_values_of_the_wrong_kind_are_named(family, tmp_path, data, value):
    """A key's value, or one entry of a list key, replaced by a value of another kind."""
    keys = declared(family)
    table = data.draw(st.sampled_from(list(keys)))
    key = data.draw(st.sampled_from(sorted(set(keys[table]) & set(DOCS[family][table]))))
    rule = keys[table][key]
    doc = copy.deepcopy(DOCS[family])
    if rule.kind is list and data.draw(st.booleans(), label="inside the list"):
        assume(not _kind_ok(rule.item.kind, value))
        doc[table][key] = doc[table][key] + [value]
    else:
        assume(not _kind_ok(rule.kind, value))
        doc[table][key] = value
    refused(tmp_path, doc, f"[{table}]", repr(key))


@pytest.mark.parametrize("family", FAMILIES)
@SETTINGS
@given(data=st.data(), value=ANY.filter(lambda v: not isinstance(v, dict)))
def test_a_table_that_is_not_a_table_is_named(family, tmp_path, data, value):
    table = data.draw(st.sampled_from(list(declared(family))))
    doc = copy.deepcopy(DOCS[family])
    del doc[table]
    doc = {table: value, **doc}  # a scalar key before the tables
    refused(tmp_path, doc, repr(table), "must be a table")


NONFINITE = st.sampled_from([math.inf, -math.inf, math.nan])
#: (family, table, key, list?) of every float key of the built-in suites.
FLOAT_KEYS = [(f, t, k, r.kind is list) for f in FAMILIES for t, rules in declared(f).items()
              for k, r in rules.items() if float in (r.kind, getattr(r.item, "kind", None)) and k in DOCS[f][t]]


@pytest.mark.parametrize("family, table, key, is_list", FLOAT_KEYS, ids=[f"{f}-{k}" for f, _, k, _ in FLOAT_KEYS])
@SETTINGS
@given(x=st.one_of(NONFINITE, st.floats(-1e6, -1e-9)))
def test_non_finite_and_negative_scales_are_named(family, table, key, is_list, tmp_path, x):
    doc = copy.deepcopy(DOCS[family])
    doc[table][key] = [1.0, x] if is_list else x
    refused(tmp_path, doc, f"[{table}]", repr(key), "finite")


#: Integer sizes and counts that must be positive (or ≥ their floor): (family, table, key, floor).
SIZES = [("exact-rbm", "data", "n_samples", 1), ("planted", "grid", "patterns", 1), ("ising", "grid", "sizes", 2),
         ("mnist", "grid", "hidden", 1), ("mnist", "estimator", "t_max", 1), ("mnist", "estimator", "n_replicates", 2),
         ("mnist", "tempering", "placement_rounds", 1), ("mnist", "tempering", "sweeps_per_round", 1)]


@pytest.mark.parametrize("family, table, key, floor", SIZES, ids=[f"{f}-{k}" for f, _, k, _ in SIZES])
@SETTINGS
@given(x=st.integers(-2**40, 1))
def test_sizes_below_their_floor_are_named(family, table, key, floor, tmp_path, x):
    assume(x < floor)
    doc = copy.deepcopy(DOCS[family])
    doc[table][key] = [x] if isinstance(doc[table][key], list) else x
    refused(tmp_path, doc, f"[{table}]", repr(key))


@pytest.mark.parametrize("family", ["exact-rbm", "planted"])
@SETTINGS
@given(shape=st.lists(st.integers(-3, 8), min_size=0, max_size=4).filter(
    lambda s: len(s) != 2 or min(s) < 1))
def test_malformed_shapes_are_named(family, tmp_path, shape):
    doc = copy.deepcopy(DOCS[family])
    doc["grid"]["shapes"] = [[6, 3], shape]
    refused(tmp_path, doc, "[grid]", "'shapes'", "each shape must be", repr(shape))


@pytest.mark.parametrize("family", FAMILIES)
@SETTINGS
@given(data=st.data(), word=st.text("abcdefghij-+", min_size=1, max_size=10))
def test_values_outside_their_choices_are_named(family, tmp_path, data, word):
    keys = declared(family)
    choice_keys = [(t, k) for t, rules in keys.items() for k, r in rules.items()
                   if (r.choices or getattr(r.item, "choices", ())) and k in DOCS[family][t]]
    table, key = data.draw(st.sampled_from(choice_keys))
    rule = keys[table][key]
    assume(word not in (rule.choices or rule.item.choices))
    doc = copy.deepcopy(DOCS[family])
    doc[table][key] = [word] if rule.kind is list else word
    refused(tmp_path, doc, f"[{table}]", f"unknown {key} {word!r} for {family}", "must be one of")


BAD_LINES = ["[grid", "= 1", "key = ", "x = 'unterminated", "[model]\nunits = 'spin'"]


@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_invalid_toml_is_named(family, tmp_path, data):
    lines = suite_path(family).read_text().splitlines()
    at = data.draw(st.integers(0, len(lines)))
    bad = data.draw(st.sampled_from(BAD_LINES))
    path = tmp_path / "x.toml"
    path.write_text("\n".join(lines[:at] + [bad] + lines[at:]) + "\n")
    with pytest.raises(TaskSpecError, match="not valid TOML") as info:
        load_suite(path)
    assert str(path) in str(info.value)


@SETTINGS
@given(name=NAMES)
def test_unknown_families_are_named(tmp_path, name):
    from snrbench.families import names

    assume(name not in names())
    doc = dict(DOCS["exact-rbm"], family=name)
    msg = refused(tmp_path, doc, f"unknown family {name!r}", "known: exact-rbm")
    close = difflib.get_close_matches(name, names(), n=1)
    assert (f"did you mean {close[0]!r}?" in msg) if close else "did you mean" not in msg


# -- valid perturbations load -------------------------------------------------------------------
SHAPE = st.tuples(st.integers(1, MAX_ENUMERATED), st.integers(1, MAX_ENUMERATED)).filter(
    lambda s: min(s) <= exact.MAX_SMALL_SIDE).map(list)
FINITE = st.one_of(st.floats(0, 50, allow_nan=False), st.integers(0, 50))
SEED_LIST = st.lists(st.integers(0, 2**31), min_size=1, max_size=3, unique=True)


def _subset(options):
    return st.lists(st.sampled_from(options), min_size=1, max_size=len(options), unique=True)


@pytest.mark.parametrize("family", ["exact-rbm", "planted", "ising"])
@SETTINGS
@given(data=st.data())
def test_valid_perturbations_of_the_exact_suites_load(family, tmp_path, data):
    doc = copy.deepcopy(DOCS[family])
    grid, draw = doc["grid"], data.draw
    grid["betas"] = draw(st.lists(FINITE, min_size=1, max_size=3, unique_by=float), label="betas")
    grid["seeds"] = draw(SEED_LIST, label="seeds")
    doc["data"].update(n_samples=draw(st.integers(1, 10_000)), teacher_seed_offset=draw(st.integers(0, 2**31)))
    if draw(st.booleans()):
        doc.pop("description")
    n_kinds = 1
    if family == "ising":
        grid["models"] = draw(_subset(["curie-weiss", "sk", "hopfield2"]))
        grid["sizes"] = draw(st.lists(st.integers(2, exact_ising.MAX_SPINS), min_size=1, max_size=3, unique=True))
        doc["data"]["teacher_beta_scale"] = draw(FINITE)
        n_cells = len(grid["models"]) * len(grid["sizes"])
    else:
        grid["shapes"] = draw(st.lists(SHAPE, min_size=1, max_size=3, unique_by=tuple), label="shapes")
        n_cells = len(grid["shapes"])
        if family == "exact-rbm":
            grid["symmetries"] = draw(_subset(["symmetric", "biased"]))
            doc["model"].update(disorder=draw(FINITE), bias_std=draw(FINITE))
            n_kinds = len(grid["symmetries"])
        else:
            grid["patterns"] = draw(st.lists(st.integers(1, 6), min_size=1, max_size=3, unique=True))
            grid["ferromagnetic_control"] = draw(st.booleans())
            doc["model"]["noise"] = draw(FINITE)
            n_kinds = len(grid["patterns"]) + grid["ferromagnetic_control"]
        doc["estimator"]["observables"] = draw(st.sampled_from(["weights", "weights+biases"]))
    header, cells = load_suite(write(tmp_path, doc))
    assert len(cells) == n_cells * n_kinds * len(grid["betas"]) * len(grid["seeds"])
    assert header["family"] == family and all(c.spec["n_data"] == doc["data"]["n_samples"] for c in cells)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_valid_perturbations_of_the_mnist_suite_load(tmp_path, data):
    doc, draw = copy.deepcopy(DOCS["mnist"]), data.draw
    doc["estimator"].update(t_max=2 ** draw(st.integers(0, 12)), n_replicates=draw(st.integers(2, 4096)),
                            observables=draw(st.sampled_from(["weights", "weights+biases"])))
    if draw(st.booleans(), label="temperature"):
        doc["tempering"] = dict(method="temperature", rungs=draw(st.integers(2, 64)),
                                beta_min=draw(st.floats(0, 1, exclude_max=True)), adapt_rounds=draw(st.integers(0, 99)),
                                rounds=draw(st.integers(0, 999)), sweeps_per_round=draw(st.integers(1, 8)))
    else:
        doc["tempering"].update(target=draw(st.floats(0, 1, exclude_min=True, exclude_max=True)),
                                rounds_per_rung_squared=draw(st.one_of(st.integers(0, 9), st.floats(0, 9))))
    _, cells = load_suite(write(tmp_path, doc))
    assert [c.label for c in cells] == ["m16-u0", "m16-u16", "m64-u0", "m64-u16"]
    assert cells[-1].spec["tempering"]["method"] == doc["tempering"]["method"]


def test_fresh_draws_check_the_spec_too():
    text = suite_path("exact-rbm").read_text().replace("seeds = [0, 1, 2]", "seedz = [0, 1, 2]")
    with pytest.raises(TaskSpecError, match=r"x\.toml: unknown key 'seedz' in \[grid\] \(did you mean 'seeds'\?\)"):
        get("exact-rbm").fresh_suite(text, 1, "x.toml")


# -- the issue's examples, message by message ---------------------------------------------------
@pytest.mark.parametrize("family, edit, message", [
    ("exact-rbm", ("seeds = [0, 1, 2]", "seedz = [0, 1, 2]"),
     r"x\.toml: unknown key 'seedz' in \[grid\] \(did you mean 'seeds'\?\)"),
    ("exact-rbm", ("shapes = [[10, 4], [12, 6]]", "shapes = [[0, 4]]"),
     r"x\.toml \[grid\]: 'shapes': each shape must be \[n_visible, n_hidden\] of positive ints, got \[0, 4\]"),
    ("exact-rbm", ("betas = [0.5, 1.0, 2.0, 3.0]", "betas = [0.5, inf]"),
     r"x\.toml \[grid\]: 'betas' must be finite non-negative numbers, got \[0\.5, inf\]"),
    ("exact-rbm", ("bias_std = 0.3", "bias_std = nan"),
     r"x\.toml \[model\]: 'bias_std' must be a finite non-negative number, got nan"),
    ("exact-rbm", ("shapes = [[10, 4], [12, 6]]", "shapes = [[40, 8]]"),
     r"x\.toml \[grid\]: 'shapes' entry \[40, 8\]: n = 40 visible with m = 8 hidden: 2\^40 states on the larger "
     r"side, beyond the 2\^26 .*the smaller side's 2\^8 is within the solver's 2\^12\); use a Monte Carlo family"),
    ("planted", ("shapes = [[8, 4], [10, 5], [12, 6]]", "shapes = [[16, 14]]"),
     r"x\.toml \[grid\]: 'shapes' entry \[16, 14\]: n = 16 visible with m = 14 hidden: 2\^14 states on the smaller "
     r"side, beyond the exact solver's 2\^12 \(truth\.exact\.MAX_SMALL_SIDE\); use a Monte Carlo family"),
    ("ising", ("sizes = [8, 10, 12]", "sizes = [8, 20]"),
     r"x\.toml \[grid\]: 'sizes' entry 20: N = 20 spins: 2\^20 states, beyond the exact Ising solver's 2\^14"),
    ("exact-rbm", ("n_samples = 500", 'n_samples = "500"'), r"x\.toml \[data\]: 'n_samples' must be a positive int"),
    ("exact-rbm", ('family = "exact-rbm"', 'family = "exact-rmb"'),
     r"x\.toml: unknown family 'exact-rmb'; known: .*\(did you mean 'exact-rbm'\?\)"),
])
def test_the_issue_examples(tmp_path, family, edit, message):
    text = suite_path(family).read_text()
    assert edit[0] in text
    path = tmp_path / "x.toml"
    path.write_text(text.replace(*edit))
    with pytest.raises(TaskSpecError, match=message):
        load_suite(path)
