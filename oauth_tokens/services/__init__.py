"""Actions on Claude OAuth credentials, one module per job:

- storing: save, remove, mark invalid, record that the model API accepted a credential;
- environment: the global credential seeded from CLAUDE_* variables;
- refresh: refreshing one credential with single flight (and the refresh settings);
- refresh_many: many at once (on one event loop: refresh_batch, refresh_batch_db), and how a
  run is shown (progress bar, JSON);
- auth_method: how a task authenticates (and who may use the global credentials);
- audit: the audit trail, a credential's usage-limit state, a credential the API rejected.

Import from here (`from oauth_tokens.services import X`); the modules are the layout, this is
the interface.
"""

from .audit import (
    AuditSubject,
    credential_audit_record,
    credential_kind_used,
    credential_limit_record,
    credential_limited_until,
    credential_rejected,
    limit_reset_capped,
)
from .auth_method import (
    INVALID_TOKENS_ENV,
    INVALID_TOKENS_USER,
    MISSING_TOKENS,
    REFRESH_FAILED,
    AuthMethod,
    AuthResolution,
    AuthSource,
    AuthUnavailable,
    OAuthState,
    OAuthUsability,
    auth_method_resolve,
    global_credentials_allowed,
    oauth_usability,
)
from .environment import EnvironmentTokensError, environment_credential_get
from .refresh import (
    CredentialSnapshot,
    FreshnessResult,
    claim_ttl,
    credential_ensure_fresh,
    credential_expired,
    credential_needs_refresh,
    grant_expiry,
    refresh_buffer,
    refresh_config,
)
from .refresh_batch import ROTATION_SAVE_MAX_SECONDS
from .refresh_many import (
    CredentialRefreshOutcome,
    RefreshManySummary,
    RefreshOutcomeKind,
    RefreshProgress,
    credentials_refresh_many,
    refresh_dry_run_json,
    refresh_summary_json,
    refresh_target_words,
)
from .storing import (
    credential_accepted_record,
    credential_mark_invalid,
    credential_remove,
    credential_store,
)

__all__ = [
    "INVALID_TOKENS_ENV",
    "INVALID_TOKENS_USER",
    "MISSING_TOKENS",
    "REFRESH_FAILED",
    "ROTATION_SAVE_MAX_SECONDS",
    "AuditSubject",
    "AuthMethod",
    "AuthResolution",
    "AuthSource",
    "AuthUnavailable",
    "CredentialRefreshOutcome",
    "CredentialSnapshot",
    "EnvironmentTokensError",
    "FreshnessResult",
    "OAuthState",
    "OAuthUsability",
    "RefreshManySummary",
    "RefreshOutcomeKind",
    "RefreshProgress",
    "auth_method_resolve",
    "claim_ttl",
    "credential_accepted_record",
    "credential_audit_record",
    "credential_ensure_fresh",
    "credential_expired",
    "credential_kind_used",
    "credential_limit_record",
    "credential_limited_until",
    "credential_mark_invalid",
    "credential_needs_refresh",
    "credential_rejected",
    "credential_remove",
    "credential_store",
    "credentials_refresh_many",
    "environment_credential_get",
    "global_credentials_allowed",
    "grant_expiry",
    "limit_reset_capped",
    "oauth_usability",
    "refresh_buffer",
    "refresh_config",
    "refresh_dry_run_json",
    "refresh_summary_json",
    "refresh_target_words",
]
