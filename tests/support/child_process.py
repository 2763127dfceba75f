"""Ending a child process (the operator or the API started by a test or a benchmark).

Shared so that every harness ends its children the same way: a test that leaves an operator
running behind it would keep reconciling another test's objects.
"""

from __future__ import annotations

import signal
import subprocess


def sigkill(proc: subprocess.Popen[bytes]) -> None:
    """A crash, not a shutdown: no handler in the child runs. Reaped, so the next incarnation
    cannot race the old one."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def stop(proc: subprocess.Popen[bytes] | None, grace: float = 20) -> None:
    """SIGTERM and up to ``grace`` seconds for a clean shutdown, then SIGKILL; nothing if it never
    started or has already ended."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
