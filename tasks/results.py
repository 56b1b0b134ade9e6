"""What a run, or a wait, ends in: one RunResult, which the runner writes to the task. The runner,
the waits and the outcome return one and never touch the queue."""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class RunResult:
    status: str  # a TaskStatus
    message: str = ""  # the task's error_message: what its page says about that status
    values: Mapping[str, Any] = field(default_factory=dict)  # more of the task's columns

    def __post_init__(self) -> None:
        # Frozen all the way down: a result handed on is never changed behind its maker's back.
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))

    def updated(self, **values: Any) -> "RunResult":
        """The same result with more columns (these win over the ones it had)."""
        return replace(self, values={**self.values, **values})
