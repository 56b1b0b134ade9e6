"""Run in a separate process by the exactly-once test: at a start time, announce the same task
event and send whatever is due, as a second worker would."""

import os
import sys
import time

import django


def main() -> None:
    task_id, start_at = int(sys.argv[1]), float(sys.argv[2])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    django.setup()
    # The apps load in django.setup() just above.
    from tasks.queue import queue_sweep
    from tasks.signals import task_finished

    time.sleep(max(0.0, start_at - time.time()))
    for _ in range(3):  # retries of the same announcement change nothing
        task_finished.send_robust(sender=None, task_id=task_id, event="succeeded", wait=0)
        queue_sweep()
    print("ok")


if __name__ == "__main__":
    main()
