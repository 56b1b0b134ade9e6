"""What a run, or a wait, ends in: one RunResult, which the runner writes to the task and the queue
reads to schedule what comes next. The runner, the waits and the outcome return one and never
touch the queue."""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class RunResult:
    status: str  # a TaskStatus
    message: str = ""  # the task's error_message: what its page says about that status
    values: Mapping[str, Any] = field(default_factory=dict)  # more of the task's columns
    usage: Mapping[str, Any] = field(default_factory=dict)  # TaskUsage columns (cost, turns)
    limit: Mapping[str, Any] = field(default_factory=dict)  # TaskLimit columns
    # Back in the queue then: a waiting task is queued again, a queued one (waiting for the
    # engine) is run again. None: nothing more to do. tasks.queue schedules it.
    requeue_at: datetime | None = None

    def __post_init__(self) -> None:
        # Frozen all the way down: a result handed on is never changed behind its maker's back.
        for name in ("values", "usage", "limit"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    def updated(
        self,
        values: Mapping[str, Any] | None = None,
        *,
        usage: Mapping[str, Any] | None = None,
        limit: Mapping[str, Any] | None = None,
    ) -> "RunResult":
        """The same result with more columns (these win over the ones it had)."""
        return replace(
            self,
            values={**self.values, **(values or {})},
            usage={**self.usage, **(usage or {})},
            limit={**self.limit, **(limit or {})},
        )

    def over(self, earlier: "RunResult") -> "RunResult":
        """This result (status, message, requeue time) on top of an earlier one's columns."""
        return replace(
            earlier.updated(self.values, usage=self.usage, limit=self.limit),
            status=self.status,
            message=self.message,
            requeue_at=self.requeue_at,
        )
