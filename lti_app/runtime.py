"""Process-level tuning for long-running web workers.

A rendered course panel allocates thousands of short-lived objects; with CPython's default thresholds the
cyclic garbage collector runs full collections over everything the worker has imported, which showed up as
p95 spikes three times the median (bench/RESULTS.md). Freezing the start-up heap and collecting the young
generation less often removes them. Called from gunicorn's ``post_worker_init`` hook (config/gunicorn.conf.py)
and by ``caseload run``-style servers; never at import time."""

from __future__ import annotations

import gc


def tune_gc(threshold0: int = 50_000) -> None:
    gc.collect()
    gc.freeze()
    _, t1, t2 = gc.get_threshold()
    gc.set_threshold(threshold0, t1, t2)
