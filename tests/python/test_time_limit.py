"""int8dit.bench.time_limit: the per-path wall-clock limit of the end-to-end benchmark. Standard library only."""
import signal
import threading
import time

import pytest

from int8dit.bench.time_limit import PathTimeout, time_limit


def test_a_body_past_its_limit_is_interrupted_and_named():
    start = time.monotonic()
    with pytest.raises(PathTimeout, match="flux: bf16_compile ran past its limit of 0.2 s"):
        with time_limit(0.2, "flux: bf16_compile"):
            time.sleep(30)
    assert time.monotonic() - start < 10  # interrupted, not slept through


def test_a_body_that_swallows_the_first_timeout_is_interrupted_again():
    # As torch.compile's precompile does: it catches and logs an exception and carries on.
    swallowed = 0
    start = time.monotonic()
    with pytest.raises(PathTimeout):
        with time_limit(0.2, "compile"):
            for _ in range(3):
                try:
                    time.sleep(30)
                except PathTimeout:
                    swallowed += 1
                    if swallowed > 1:
                        raise
    assert swallowed == 2
    assert time.monotonic() - start < 10
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_a_body_within_its_limit_runs_and_leaves_no_alarm_behind():
    before = signal.getsignal(signal.SIGALRM)
    with time_limit(30, "quick"):
        value = sum(range(1000))
    assert value == 499500
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


@pytest.mark.parametrize("seconds", [None, 0])
def test_no_limit_means_no_alarm(seconds):
    with time_limit(seconds):
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_outside_the_main_thread_it_refuses_instead_of_never_firing():
    errors = []

    def worker():
        try:
            with time_limit(1.0):
                pass
        except RuntimeError as e:
            errors.append(str(e))

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert errors and "main thread" in errors[0]
