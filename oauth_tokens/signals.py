"""Events of this app that others may act on (notifications listens; this app imports nobody).

Sent with send_robust, so a failing listener never breaks a refresh or a task.
"""

from django.dispatch import Signal

# A credential cannot be used any more until its user (or the operator, for the global one)
# saves new tokens: the refresh was refused, or the API answered 401/403.
# kwargs: credential_id, owner_id (None for the global credential), reason (no secret),
# event_id (the same for every delivery of one event).
credential_failed = Signal()

# A refresh failed (transient or not). kwargs: credential_id, owner_id, reason,
# consecutive_failures.
credential_refresh_failed = Signal()

# A periodic refresh run (the refresh_tokens command) finished: the time for periodic checks.
# kwargs: none.
refresh_run_finished = Signal()
