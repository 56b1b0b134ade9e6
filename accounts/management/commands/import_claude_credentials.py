from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from accounts.local_install import CredentialsNotFound, claude_credentials_read
from accounts.selectors import code_agent_status_get, token_status_get
from accounts.services import credential_import
from oauth_tokens.formats import TokenFormatError


class Command(BaseCommand):
    help = (
        "Store a local Claude Code login (the CLI's credentials file, or the macOS Keychain) "
        "as a user's OAuth tokens. Prints what was stored, never the tokens."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="username to store the tokens for")
        parser.add_argument(
            "--file",
            type=Path,
            help="credentials file to read (default: $CLAUDE_CONFIG_DIR/.credentials.json or "
            "~/.claude/.credentials.json; on macOS the Keychain is tried first)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        try:
            user = user_model.objects.get_by_natural_key(options["user"])
        except user_model.DoesNotExist:
            raise CommandError(f"There is no user named {options['user']!r}.") from None
        try:
            raw, origin = claude_credentials_read(path=options["file"])
            credential = credential_import(user=user, raw=raw)
        except CredentialsNotFound as exc:
            raise CommandError(str(exc)) from None
        except TokenFormatError as exc:
            raise CommandError(f"The credentials from {origin} cannot be used: {exc}") from None

        tokens = token_status_get(credential=credential, now=timezone.now())
        self.stdout.write(
            self.style.SUCCESS(f"Stored OAuth tokens for {user.get_username()} from {origin}.")
        )
        for label, value in (
            ("kind", tokens.kind),
            ("expires", tokens.expires),
            ("scopes", tokens.scopes),
            ("subscription", tokens.subscription),
        ):
            self.stdout.write(f"  {label}: {value}")
        status = code_agent_status_get(user=user)
        if not status.use_oauth:
            self.stdout.write(
                "Claude OAuth is off for this user, so these tokens are not used yet: turn it on "
                "in Settings → Code agent."
            )
        self.stdout.write(f"Next task: {status.method.title}. {status.method.reason}")
