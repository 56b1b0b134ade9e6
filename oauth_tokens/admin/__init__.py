"""Token health in the admin, one module per part: filters, display helpers (badges, expiry),
the dashboard's context, and the ModelAdmin with its actions (credentials.py, which registers
it on import), and the append-only audit log (audit.py)."""

from .audit import CredentialAuditEventAdmin
from .credentials import OAuthCredentialAdmin

__all__ = ["CredentialAuditEventAdmin", "OAuthCredentialAdmin"]
