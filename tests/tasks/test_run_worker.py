"""run_worker's own bookkeeping, its worker processes replaced: a stop that comes while a
worker is starting reaches that worker too, so the command does not wait for it for ever."""

import signal

from tasks.management.commands import run_worker
from tasks.management.commands.run_worker import Command, _Slot


class _Process:
    """A started worker: alive, and what it was sent."""

    def __init__(self) -> None:
        self.signals: list[int] = []

    def poll(self) -> None:
        return None

    def send_signal(self, signum: int) -> None:
        self.signals.append(signum)


def test_a_worker_started_as_the_stop_comes_is_stopped_too(monkeypatch):
    command = Command()
    command.slots, command.stopping = [_Slot(index=0)], []
    started: list[_Process] = []

    def popen(args, **kwargs):
        command._stop(signal.SIGTERM, None)  # the signal comes while the worker starts
        started.append(_Process())
        return started[-1]

    monkeypatch.setattr(run_worker.subprocess, "Popen", popen)
    command._tend(0.0)
    [worker] = started
    assert worker.signals == [signal.SIGTERM]
    # Once stopping, no worker starts, a due restart neither.
    command.slots.append(_Slot(index=1))
    command._tend(100.0)
    assert started == [worker]
