"""Many callers, one expired credential: exactly one request reaches the token endpoint."""

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from oauth_tokens.services import credential_ensure_fresh

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db(transaction=True)
def test_twenty_threads_cause_one_refresh(oauth_settings, token_server, make_credential, user):
    token_server.delay_seconds = 0.3  # keep the refresh in flight while the others arrive
    credential = make_credential(user, expires_in=-10)
    barrier = threading.Barrier(20)
    tokens: list[str] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            barrier.wait()
            result = credential_ensure_fresh(credential_id=credential.pk)
            assert result.ok, result.error
            assert result.snapshot is not None
            tokens.append(result.snapshot.access_token)
        except BaseException as exc:  # noqa: BLE001  reported below; a thread must not swallow it
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors
    assert token_server.request_count == 1
    assert len(tokens) == 20
    assert set(tokens) == {token_server.last_grant["access_token"]}


@pytest.mark.deploy  # fresh app processes
@pytest.mark.django_db(transaction=True)
def test_four_processes_cause_one_refresh(oauth_settings, token_server, make_credential, user):
    token_server.delay_seconds = 0.5
    credential = make_credential(user, expires_in=-10)
    env = {
        **os.environ,
        "TEST_TOKEN_URL": token_server.url,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "PYTHONPATH": str(ROOT),
    }
    # The children must use the test database this test wrote to.
    db_name = connection.settings_dict["NAME"]
    if connection.vendor == "postgresql":
        env["DATABASE_URL"] = (
            f"postgres://{connection.settings_dict['USER']}@{connection.settings_dict['HOST']}:"
            f"{connection.settings_dict['PORT']}/{db_name}"
        )
    else:
        env["DATABASE_URL"] = f"sqlite:///{db_name}"
    start_at = time.time() + 4  # after every child has imported Django
    children = [
        subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("_refresh_worker.py")),
                str(credential.pk),
                str(start_at),
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [child.communicate(timeout=90) for child in children]
    for child, (_out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
    answers = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]

    assert token_server.request_count == 1
    expected = hashlib.sha256(token_server.last_grant["access_token"].encode()).hexdigest()
    assert all(a["ok"] for a in answers)
    assert {a["sha"] for a in answers} == {expected}


@pytest.mark.django_db(transaction=True)
def test_tokens_saved_during_a_refresh_are_not_overwritten_by_it(
    oauth_settings, token_server, make_credential, user
):
    from oauth_tokens.formats import credential_input_parse
    from oauth_tokens.models import OAuthCredential
    from oauth_tokens.services import credential_store

    token_server.delay_seconds = 0.6
    credential = make_credential(user, expires_in=-10)
    outcome = {}

    def refresh() -> None:
        try:
            outcome["result"] = credential_ensure_fresh(credential_id=credential.pk)
        finally:
            connection.close()

    thread = threading.Thread(target=refresh)
    thread.start()
    time.sleep(0.2)  # the refresh is in flight now
    pasted = "sk-ant-oat01-pasted-while-refreshing-0123456789"
    credential_store(owner=user, parsed=credential_input_parse(raw=pasted))
    thread.join(timeout=30)

    row = OAuthCredential.objects.get(pk=credential.pk)
    assert row.access_token == pasted  # the user's new tokens win
    assert row.kind == "setup_token"
    assert row.refresh_count == 0
    assert outcome["result"].ok


@pytest.mark.django_db(transaction=True)
def test_waiters_of_a_failed_flight_share_its_failure_and_send_nothing_more(
    oauth_settings, token_server, make_credential, user
):
    token_server.delay_seconds = 0.4
    token_server.fail_next(503, times=50)
    oauth_settings.CLAUDE_OAUTH_MAX_ATTEMPTS = 1
    credential = make_credential(user, expires_in=120)  # due (inside the buffer), not expired
    results = []

    def ask() -> None:
        try:
            results.append(credential_ensure_fresh(credential_id=credential.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=ask) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert token_server.request_count == 1
    assert len(results) == 5
    assert all(r.ok and r.stale and not r.refreshed for r in results)
