"""The crash-injection hook of the store's commit and recovery (a test aid, inert by default).

:func:`step` runs just before every file operation of :func:`snrbench.store.transaction.commit` and
:func:`~snrbench.store.transaction.recover` (write a temporary file, rename, remove). It counts them,
from 1, in this process. When ``$SNRBENCH_KILL_AT`` is ``k`` the process SIGKILLs itself just
before its ``k``-th operation: ``tests/test_store_kill.py`` runs a command once for every ``k``
to check that a kill between any two file operations leaves a store that recovers whole.
Unset (always, outside that test) the hook is a counter increment.
"""
from __future__ import annotations

import os
import signal

__all__ = ["KILL_ENV", "step"]

KILL_ENV = "SNRBENCH_KILL_AT"
_count = [0]


def step() -> None:
    """Count one file operation; die here by SIGKILL if it is the ``$SNRBENCH_KILL_AT``-th."""
    _count[0] += 1
    at = os.environ.get(KILL_ENV)
    if at and int(at) == _count[0]:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
