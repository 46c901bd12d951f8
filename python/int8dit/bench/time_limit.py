"""A wall-clock limit for one benchmark path, so that one hang (a compile that never finishes) costs
that path and not the whole run: the lent GPU machine gives a command 10 minutes, and a path that
hung there once (torchao int8 + torch.compile on PixArt-Sigma, 8 minutes) took every later model's
numbers with it.

SIGALRM-based: main thread of a POSIX process only. The limit interrupts Python code and the waits
Python makes interruptible (futures, subprocesses, sleeps); a C call that never returns to the
interpreter is not interrupted. Once past the limit the alarm fires again every REPEAT_SECONDS until
the body has stopped: torch.compile's Triton precompile catches and logs any exception around one
kernel's ptxas call and carries on (seen on the H200, 2026-12-02: the first PathTimeout was logged
and the compile ran until the device call's own limit ended the whole run).
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator, Optional


REPEAT_SECONDS = 2.0


class PathTimeout(Exception):
    """The path ran past its limit."""


@contextmanager
def time_limit(seconds: Optional[float], what: str = "this path") -> Iterator[None]:
    """Raise PathTimeout in the body after ``seconds`` of wall time (None or <= 0: no limit)."""
    if not seconds or seconds <= 0:
        yield
        return
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        raise RuntimeError("time_limit needs the main thread of a POSIX process (it uses SIGALRM)")

    def on_alarm(signum, frame):
        raise PathTimeout(f"{what} ran past its limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds, REPEAT_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
