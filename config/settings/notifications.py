"""Settings of notifications (notifications/: email, webhooks, retries), read like the rest of
config.settings.base, which imports this module in their place."""

import environ

env = environ.Env()  # base.py has read `.env` into the process environment already

# Outgoing email, as a URL: smtp://user:password@host:587 (add ?tls=True), consolemail://, ...
# Empty: no email is sent (the email channel is off). consolemail:// prints instead (development).
EMAIL_URL = env.str("EMAIL_URL", default="")
# Without EMAIL_URL a mailer that drops everything (Django wants a default one).
MAILERS: dict[str, dict[str, object]] = {
    "default": {"BACKEND": "django.core.mail.backends.dummy.EmailBackend"}
}
if EMAIL_URL:
    _EMAIL = env.email_url_config(EMAIL_URL)
    _smtp = _EMAIL["EMAIL_BACKEND"].endswith("smtp.EmailBackend")
    MAILERS["default"] = {
        "BACKEND": _EMAIL["EMAIL_BACKEND"],
        "OPTIONS": {
            "host": _EMAIL.get("EMAIL_HOST", ""),
            "port": _EMAIL.get("EMAIL_PORT") or 25,
            "username": _EMAIL.get("EMAIL_HOST_USER", ""),
            "password": _EMAIL.get("EMAIL_HOST_PASSWORD", ""),
            "use_tls": bool(_EMAIL.get("EMAIL_USE_TLS", False)),
            "use_ssl": bool(_EMAIL.get("EMAIL_USE_SSL", False)),
            "timeout": 10,
        }
        if _smtp
        else {},
    }
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="claude-runner@localhost")
# The address of this site as users reach it, for links in notifications ("" leaves them out).
NOTIFICATIONS_SITE_URL = env.str("NOTIFICATIONS_SITE_URL", default="")
NOTIFICATIONS_SUBJECT_PREFIX = env.str("NOTIFICATIONS_SUBJECT_PREFIX", default="[Claude Runner] ")
# Delivery tries before giving up (shown in the admin), and the first retry's delay (doubling).
NOTIFICATIONS_MAX_ATTEMPTS = env.int("NOTIFICATIONS_MAX_ATTEMPTS", default=6)
NOTIFICATIONS_RETRY_BASE_SECONDS = env.int("NOTIFICATIONS_RETRY_BASE_SECONDS", default=60)
# Warn when OAuth tokens fail to refresh this many times in a row.
NOTIFICATIONS_REFRESH_FAILURES = env.int("NOTIFICATIONS_REFRESH_FAILURES", default=3)
# Warn when a refresh chain has not been refreshed for this many days.
NOTIFICATIONS_IDLE_CHAIN_DAYS = env.int("NOTIFICATIONS_IDLE_CHAIN_DAYS", default=30)
