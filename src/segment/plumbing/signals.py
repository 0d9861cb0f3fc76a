"""Ctrl-C and SIGTERM stop a running DuckDB query at once.

Public: track, interrupt_all, watch.
Reads: nothing. Writes: nothing (signal handlers while a query runs).

DuckDB notices Ctrl-C by itself only in some setups (it watches SIGINT during a query, and not when
the process was started in the background with SIGINT ignored) and never notices SIGTERM: a `kill`
would wait for a 50M-line query to end. The CLI runs :func:`watch`: a thread woken through Python's
signal wakeup fd calls ``interrupt()`` on every DuckDB connection segment has open (:func:`track`);
the query then fails in the main thread, where the Python handler has recorded the signal, and the
CLI exits 130 after the usual cleanup.
"""
from __future__ import annotations

import os
import signal
import threading
import weakref

_ACTIVE: "weakref.WeakSet" = weakref.WeakSet()


def track(con):
    """Register a DuckDB connection (or cursor) to be interrupted on a signal; returns it."""
    _ACTIVE.add(con)
    return con


def interrupt_all() -> int:
    n = 0
    for con in list(_ACTIVE):
        try:
            con.interrupt()
            n += 1
        except Exception:  # closed meanwhile
            pass
    return n


def watch(signums) -> callable:
    """Interrupt the tracked connections whenever one of ``signums`` arrives (they must have Python
    handlers, which write to the wakeup fd). Main thread only; returns the function that stops it."""
    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        previous = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    except ValueError:  # not the main thread
        os.close(r)
        os.close(w)
        return lambda: None
    wanted = {int(s) for s in signums}

    def run():
        while True:
            try:
                data = os.read(r, 64)
            except OSError:
                return
            if not data:
                return
            if wanted & set(data):
                interrupt_all()

    watcher = threading.Thread(target=run, name="segment-signals", daemon=True)
    watcher.start()

    def stop():
        signal.set_wakeup_fd(previous)
        os.close(w)  # the watcher reads EOF and ends …
        watcher.join(timeout=5)  # … before its fd is closed: a reused fd number must never be read by it
        os.close(r)

    return stop
