"""What a many-credentials refresh reports: one outcome per credential, and the run's summary."""

from dataclasses import dataclass, field

from oauth_tokens.token_client import EDGE_BLOCKED


class RefreshOutcomeKind:
    REFRESHED = "refreshed"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class CredentialRefreshOutcome:
    credential_id: int
    owner: str  # username, or "" for a global credential
    outcome: str  # RefreshOutcomeKind
    reason: str = ""  # why skipped or failed; never holds a token
    permanent: bool = False  # failed for good: the user must save new tokens
    code: str = ""  # why it failed, as RefreshError.code (token_client.EDGE_BLOCKED, ...)

    @property
    def label(self) -> str:
        return f"{self.owner or 'global'} (credential {self.credential_id})"


@dataclass
class RefreshManySummary:
    selected: int
    outcomes: list[CredentialRefreshOutcome] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0
    # The longest a token endpoint's answer (a rotated refresh token) waited to be committed.
    slowest_save_seconds: float = 0.0
    saves_over_bound: int = 0  # answers that waited longer than ROTATION_SAVE_MAX_SECONDS

    def of(self, kind: str) -> list[CredentialRefreshOutcome]:
        return [outcome for outcome in self.outcomes if outcome.outcome == kind]

    @property
    def refreshed(self) -> int:
        return len(self.of(RefreshOutcomeKind.REFRESHED))

    @property
    def skipped(self) -> int:
        return len(self.of(RefreshOutcomeKind.SKIPPED))

    @property
    def failed(self) -> int:
        return len(self.of(RefreshOutcomeKind.FAILED))

    @property
    def edge_blocked(self) -> int:
        """Failures because the token endpoint's edge refused this client (not a token)."""
        return sum(outcome.code == EDGE_BLOCKED for outcome in self.of(RefreshOutcomeKind.FAILED))

    @property
    def not_attempted(self) -> int:
        return self.selected - len(self.outcomes)
