"""The runner's check of a worker's answer (:func:`snrbench.predict.runner.check_answer`), by property:
every well-formed answer is accepted, and an answer with one thing wrong is refused by a message that
names what is wrong."""
from __future__ import annotations

import math

from hypothesis import given, settings, strategies as st

from snrbench.predict.runner import check_answer

SETTINGS = settings(max_examples=80, deadline=None)

FINITE = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-10**300, 10**300))
POSITIVE = st.one_of(st.floats(min_value=1e-300, allow_infinity=False), st.integers(1, 10**300))
NON_NEGATIVE = st.one_of(st.floats(min_value=0.0, allow_infinity=False), st.integers(0, 10**300))
#: Values a JSON line can carry that are not numbers (and bools, which Python counts as ints).
NOT_A_NUMBER = st.one_of(st.none(), st.booleans(), st.text(max_size=4), st.lists(st.integers(), max_size=2),
                         st.dictionaries(st.text(max_size=2), st.integers(), max_size=1))
NON_FINITE = st.one_of(st.sampled_from([math.inf, -math.inf, math.nan]), st.just(10**400))  # 10**400 overflows a float


@st.composite
def problems(draw):
    """``(n_T, budget)`` of a cell."""
    return draw(st.integers(1, 20)), draw(st.integers(0, 2**40))


@st.composite
def answers(draw, n_T: int, budget: int):
    """A well-formed successful answer for a cell with ``n_T`` grid points and ``budget`` chain-sweeps."""
    ans = dict(ok=True, log10_q=draw(st.lists(FINITE, min_size=n_T, max_size=n_T)),
               sweeps=draw(st.integers(0, budget)), seconds=draw(NON_NEGATIVE), cpu_seconds=draw(NON_NEGATIVE))
    for key in ("tau", "grad_norm2"):
        choice = draw(st.sampled_from(["absent", "none", "value"]))
        if choice != "absent":
            ans[key] = None if choice == "none" else draw(POSITIVE)
    if draw(st.booleans()):
        ans.update(nonce="ab12", isolation={"network": True})  # extra keys are the runner's, not checked here
    return ans


@SETTINGS
@given(data=st.data(), cell=problems())
def test_well_formed_answers_are_accepted(data, cell):
    assert check_answer(data.draw(answers(*cell)), *cell) is None


@SETTINGS
@given(error=st.text(max_size=40), fatal=st.booleans())
def test_a_failure_with_its_message_is_accepted(error, fatal):
    assert check_answer(dict(ok=False, error=error, fatal=fatal), 17, 100) is None


@SETTINGS
@given(ans=st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=3),
                     st.dictionaries(st.sampled_from(["log10_q", "error", "sweeps"]), st.integers(), max_size=2),
                     st.builds(dict, ok=st.one_of(st.none(), st.integers(0, 1), st.text(max_size=4)))))
def test_an_answer_without_a_boolean_ok_is_refused(ans):
    assert "boolean 'ok'" in check_answer(ans, 17, 100)


@SETTINGS
@given(error=st.one_of(st.none(), st.integers(), st.lists(st.text(max_size=3), max_size=2)), missing=st.booleans())
def test_a_failure_without_a_message_is_refused(error, missing):
    ans = dict(ok=False) if missing else dict(ok=False, error=error)
    assert "error message" in check_answer(ans, 17, 100)


def _q_corruptions(n_T: int):
    """A log10_q that is not n_T finite numbers: wrong length, a bad entry, or not a list."""
    good = st.lists(FINITE, min_size=n_T, max_size=n_T)
    wrong_length = st.integers(0, 40).filter(lambda k: k != n_T).flatmap(
        lambda k: st.lists(FINITE, min_size=k, max_size=k))
    bad_entry = st.tuples(good, st.integers(0, n_T - 1), st.one_of(NON_FINITE, NOT_A_NUMBER)).map(
        lambda t: t[0][:t[1]] + [t[2]] + t[0][t[1] + 1:])
    not_a_list = st.one_of(NOT_A_NUMBER.filter(lambda v: not isinstance(v, list)), FINITE, good.map(tuple),
                           st.just("missing"))
    return st.one_of(wrong_length, bad_entry, not_a_list)


@SETTINGS
@given(data=st.data(), cell=problems())
def test_a_malformed_curve_is_refused_naming_log10_q(data, cell):
    n_T, budget = cell
    ans = data.draw(answers(n_T, budget))
    q = data.draw(_q_corruptions(n_T))
    if q == "missing":
        del ans["log10_q"]
    else:
        ans["log10_q"] = q
    msg = check_answer(ans, n_T, budget)
    assert msg is not None and msg.startswith("log10_q") and f"{n_T} finite numbers" in msg


@SETTINGS
@given(data=st.data(), cell=problems(), key=st.sampled_from(["tau", "grad_norm2"]),
       bad=st.one_of(NON_FINITE, NOT_A_NUMBER.filter(lambda v: v is not None), FINITE.filter(lambda x: x <= 0)))
def test_a_bad_tau_or_gradient_norm_is_refused_naming_it(data, cell, key, bad):
    ans = data.draw(answers(*cell))
    ans[key] = bad
    msg = check_answer(ans, *cell)
    assert msg is not None and msg.startswith(f"{key} = ") and "finite and positive" in msg


@SETTINGS
@given(data=st.data(), cell=problems())
def test_sweeps_outside_the_budget_or_not_an_int_are_refused(data, cell):
    n_T, budget = cell
    ans = data.draw(answers(n_T, budget))
    bad = data.draw(st.one_of(st.integers(max_value=-1), st.integers(min_value=budget + 1), st.just("missing"),
                              NOT_A_NUMBER, st.floats(0, budget)))
    if bad == "missing":
        del ans["sweeps"]
    else:
        ans["sweeps"] = bad
    msg = check_answer(ans, n_T, budget)
    assert msg is not None and msg.startswith("sweeps = ") and f"[0, {budget}]" in msg


@SETTINGS
@given(data=st.data(), cell=problems(),
       bad=st.one_of(NON_FINITE, NOT_A_NUMBER, st.floats(max_value=-1e-300), st.integers(max_value=-1),
                     st.just("missing")))
def test_bad_seconds_are_refused(data, cell, bad):
    ans = data.draw(answers(*cell))
    if bad == "missing":
        del ans["seconds"]
    else:
        ans["seconds"] = bad
    msg = check_answer(ans, *cell)
    assert msg is not None and msg.startswith("seconds = ") and "finite and ≥ 0" in msg


@SETTINGS
@given(data=st.data(), cell=problems())
def test_the_first_problem_is_the_one_named(data, cell):
    """Two things wrong: the message names the first in the order the answer is read."""
    n_T, budget = cell
    ans = data.draw(answers(n_T, budget))
    order = ["log10_q", "tau", "grad_norm2", "sweeps", "seconds"]
    a, b = sorted(data.draw(st.lists(st.sampled_from(order), min_size=2, max_size=2, unique=True)), key=order.index)
    for key in (a, b):
        ans[key] = math.nan
    assert check_answer(ans, n_T, budget).startswith(a)
