import os
from pathlib import Path

import numpy as np
import pytest


def pytest_configure(config):
    """Under pytest-xdist (``make test``: two test processes on two cores) each process computes on one
    thread, torch's and the BLAS's: their second threads would only contend with the other process's,
    spinning while they wait. In-process only: the subprocesses a test starts keep their defaults (the
    tests that compare thread settings set theirs explicitly)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(1)
        threadpool_limits(1)


@pytest.fixture(scope="session")
def readme_example() -> str:
    """The entry in the README's "Submit a predictor" section: its first ```python block, verbatim."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    begin = text.index("```python\n", text.index("\n## Submit a predictor\n")) + len("```python\n")
    return text[begin:text.index("\n```", begin) + 1]


@pytest.fixture(scope="session", autouse=True)
def warm_launchers():
    """The session's workers and sampler processes are forked from warm launchers
    (:mod:`snrbench.predict.launcher`), as within one long ``snrbench predict``: a launcher of each kind
    lives as long as the environment it was started with (a new ``SNRBENCH_*`` folder starts another)."""
    from snrbench.predict import launcher

    with launcher.scope():
        yield


@pytest.fixture
def rng():
    return np.random.default_rng(20261123)


@pytest.fixture
def one_thread():
    """For tests of tiny models: threads only add wake-up latency (large on a shared 2-core machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
