"""Run in a separate process by the concurrency test: wait for a start time, then ask for the
credential and print the access token's sha256 (never the token) as one JSON line."""

import hashlib
import json
import os
import sys
import time

import django


def main() -> None:
    credential_id, start_at = int(sys.argv[1]), float(sys.argv[2])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    django.setup()
    from django.conf import settings

    settings.CLAUDE_OAUTH_TOKEN_URL = os.environ["TEST_TOKEN_URL"]
    from oauth_tokens.services import credential_ensure_fresh

    time.sleep(max(0.0, start_at - time.time()))
    result = credential_ensure_fresh(credential_id=credential_id)
    token = result.snapshot.access_token if result.snapshot else ""
    print(json.dumps({"ok": result.ok, "sha": hashlib.sha256(token.encode()).hexdigest()}))


if __name__ == "__main__":
    main()
