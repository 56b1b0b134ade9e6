"""Events of this app that others may act on (notifications listens; nothing here imports it).

Sent with send_robust after the task's row is saved, so a failing listener never breaks a run.
"""

from django.dispatch import Signal

# A task reached a point its owner may want to hear about.
# kwargs: task_id, event (a TaskEvent value), and for "waiting" the wait number `wait` (1, 2, ...).
task_finished = Signal()

# A finished run's changes are recorded: its commits kept and, when the task asked for one, its
# pull request opened or refused. Sent after task_finished, for runs that reached their
# container's outcome. kwargs: task_id.
task_recorded = Signal()

# A running task is reaching a finished status (succeeded, failed, timed out, cancelled), sent
# inside the transaction that saves it: a receiver's writes commit with that status or not at
# all. A receiver keeps its writes in a savepoint of its own, so that its failure leaves the
# status to commit. kwargs: task_id, status.
task_ending = Signal()

# The queue's sweep ran (tasks.queue.queue_sweep): an app with jobs of its own puts back in the
# queue what is due and not taken, and returns how many. kwargs: now.
queue_swept = Signal()


class TaskEvent:
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # also timed out, and stopped by a rejected credential
    WAITING = "waiting"  # stopped by a usage limit; runs again after the reset
    RESUMED = "resumed"  # queued again after waiting
