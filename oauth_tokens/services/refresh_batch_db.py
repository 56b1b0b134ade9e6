"""The database side of the batch refresh (services/refresh_batch.py explains the whole):
claiming a chunk of credentials in one statement, saving answers in batches, reading another
flight's outcome. Every function here runs in the batch's database thread."""

import logging
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import F, Field, Q
from django.utils import timezone

from oauth_tokens.models import CredentialKind, CredentialStatus, OAuthCredential
from oauth_tokens.token_client import RefreshConfig, RefreshError, TokenGrant, redact

from .audit import batch_audit_record
from .refresh import claim_ttl, refresh_failure_values, refresh_grant_values
from .refresh_outcome import CredentialRefreshOutcome, RefreshOutcomeKind

logger = logging.getLogger("oauth_tokens.services")

STALE_NOTE = " (the current access token still works for now)"
# Why a credential was skipped (the refresh_tokens command and the admin show these).
DELETED = "deleted meanwhile"
NOT_REFRESHABLE = "not refreshable (a long-lived setup token)"
MARKED_INVALID = "marked invalid; the user must save new tokens"
ALREADY_FRESH = "already fresh (refreshed elsewhere meanwhile)"
_REPLACED = "replaced by new tokens while it was being refreshed; kept the new tokens"


@dataclass(frozen=True, slots=True)
class BatchTarget:
    credential_id: int
    owner: str  # username, or "" for a global credential


@dataclass(frozen=True, slots=True)
class Claimed:
    target: BatchTarget
    claim: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime | None
    deadline: float  # time.monotonic() by which the refresh must have ended


@dataclass(frozen=True, slots=True)
class Held:
    """A credential someone else holds a live claim on; refresh_count as it was then."""

    target: BatchTarget
    refresh_count: int


@dataclass(slots=True)
class Answer:
    item: Claimed
    at: float  # time.monotonic() when the answer arrived
    now: datetime
    grant: TokenGrant | None = None
    error: RefreshError | None = None
    unexpected: str = ""  # an exception's type name: release the claim, write nothing else


def outcome_skipped(target: BatchTarget, reason: str) -> CredentialRefreshOutcome:
    return CredentialRefreshOutcome(
        target.credential_id, target.owner, RefreshOutcomeKind.SKIPPED, reason
    )


def outcome_failed(
    target: BatchTarget, reason: str, permanent: bool = False, code: str = ""
) -> CredentialRefreshOutcome:
    return CredentialRefreshOutcome(
        target.credential_id,
        target.owner,
        RefreshOutcomeKind.FAILED,
        redact(reason),
        permanent,
        code,
    )


def chunk_claim(
    targets: list[BatchTarget], *, force: bool, buffer: timedelta, config: RefreshConfig
) -> tuple[list[Claimed], list[CredentialRefreshOutcome], list[Held]]:
    """Claim what can be claimed of `targets` in one UPDATE and read it back decrypted.

    Returns the claimed credentials (in `targets` order), the outcomes of those that need no
    refresh any more, and those someone else is refreshing right now."""
    claim = secrets.token_hex(16)
    started, now = time.monotonic(), timezone.now()
    by_id = {target.credential_id: target for target in targets}
    free = (
        Q(refresh_claim="")
        | Q(refresh_claimed_until__isnull=True)
        | Q(refresh_claimed_until__lte=now)
    )
    claimable = OAuthCredential.objects.filter(
        free, pk__in=list(by_id), kind=CredentialKind.REFRESHABLE
    ).exclude(status=CredentialStatus.INVALID)
    if not force:  # still due, checked in the same statement that claims
        claimable = claimable.filter(expires_at__lte=now + buffer)
    count = claimable.update(
        refresh_claim=claim,
        refresh_claimed_until=now + claim_ttl(config),
        last_refresh_attempt_at=now,
    )
    rows: dict[int, Any] = {}
    if count:
        for row in OAuthCredential.objects.filter(pk__in=list(by_id), refresh_claim=claim).values(
            "pk", "refresh_token", "expires_at"
        ):
            rows[row["pk"]] = row
    deadline = started + config.max_total_seconds
    claimed = [
        Claimed(target, claim, rows[pk]["refresh_token"], rows[pk]["expires_at"], deadline)
        for pk, target in by_id.items()
        if pk in rows
    ]
    outcomes: list[CredentialRefreshOutcome] = []
    held: list[Held] = []
    rest = [pk for pk in by_id if pk not in rows]
    if rest:
        found = {
            row["pk"]: row
            for row in OAuthCredential.objects.filter(pk__in=rest).values(
                "pk", "kind", "status", "refresh_claim", "refresh_claimed_until", "refresh_count"
            )
        }
        for pk in rest:
            target, other = by_id[pk], found.get(pk)
            if other is None:
                outcomes.append(outcome_skipped(target, DELETED))
            elif other["kind"] != CredentialKind.REFRESHABLE:
                outcomes.append(outcome_skipped(target, NOT_REFRESHABLE))
            elif other["status"] == CredentialStatus.INVALID:
                outcomes.append(outcome_skipped(target, MARKED_INVALID))
            elif other["refresh_claim"] and other["refresh_claimed_until"]:
                held.append(Held(target, other["refresh_count"]))  # live, or just ended
            else:
                outcomes.append(outcome_skipped(target, ALREADY_FRESH))
    return claimed, outcomes, held


def other_flight_read(credential_id: int) -> dict[str, Any] | None:
    row: Any = (
        OAuthCredential.objects.filter(pk=credential_id)
        .values(
            "refresh_claim",
            "refresh_claimed_until",
            "refresh_count",
            "status",
            "last_refresh_error",
            "last_refresh_error_code",
            "expires_at",
        )
        .first()
    )
    return row


def answers_save(answers: list[Answer]) -> tuple[list[CredentialRefreshOutcome], float]:
    """Write a batch of answers in one transaction, each only while our claim stands (if the
    user saved new tokens meanwhile, the answer belongs to the replaced chain and is dropped).
    Returns the outcomes and the time.monotonic() of the commit."""
    grants = [answer for answer in answers if answer.grant is not None]
    with transaction.atomic():
        saved = _grants_save(grants)
        outcomes = [_answer_outcome(answer, saved) for answer in answers]
    committed = time.monotonic()
    # After the commit: the audit trail (one INSERT for the batch) and the failure signals.
    batch_audit_record(
        outcomes=outcomes,
        failed_ids=[a.item.target.credential_id for a in answers if a.error is not None],
    )
    return outcomes, committed


def _answer_outcome(answer: Answer, grants_saved: set[int]) -> CredentialRefreshOutcome:
    """The outcome of one answer; a failure's columns are written here, one UPDATE each (rare)."""
    item, target = answer.item, answer.item.target
    if answer.grant is not None:
        if target.credential_id not in grants_saved:
            return outcome_skipped(target, _REPLACED)
        return CredentialRefreshOutcome(
            target.credential_id, target.owner, RefreshOutcomeKind.REFRESHED
        )
    ours = OAuthCredential.objects.filter(pk=target.credential_id, refresh_claim=item.claim)
    if answer.error is None:
        ours.update(refresh_claim="", refresh_claimed_until=None)
        return outcome_failed(target, f"unexpected {answer.unexpected}")
    values = refresh_failure_values(error=answer.error, now=answer.now)
    if not ours.update(**values, consecutive_failures=F("consecutive_failures") + 1):
        return outcome_skipped(target, _REPLACED)
    return _failure_outcome(answer)


def _grant_values(answer: Answer) -> dict[str, Any]:
    assert answer.grant is not None
    return refresh_grant_values(
        grant=answer.grant, old_refresh_token=answer.item.refresh_token, now=answer.now
    )


def _grants_save(answers: list[Answer]) -> set[int]:
    """Save grants, each only while our claim stands; the ids saved.

    One UPDATE ... FROM (VALUES ...) RETURNING for the whole batch where the database has it
    (PostgreSQL, SQLite 3.35+): a statement per row costs a query compilation each and, on
    SQLite, a hand-over of the GIL each, which the event loop thread makes slow to get back.
    The columns are refresh_grant_values', the one rule for what a grant writes.
    """
    if not answers:
        return set()
    one_statement = connection.vendor == "postgresql" or (
        connection.vendor == "sqlite" and sqlite3.sqlite_version_info >= (3, 35)
    )
    if not one_statement:
        return _grants_save_each(answers)
    values_rows = [_grant_values(answer) for answer in answers]
    # scopes only when the endpoint sent some: NULL keeps the stored ones.
    names = [name for name in values_rows[0] if name != "scopes"] + ["scopes"]
    fields = [_column_of(name) for name in names]
    sql = _grants_update_sql(fields, rows=len(answers))
    params = _grants_params(answers, values_rows, names=names, fields=fields)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


def _grants_save_each(answers: list[Answer]) -> set[int]:
    """_grants_save on a database without UPDATE ... FROM: one UPDATE per grant."""
    saved = set()
    for answer in answers:
        item = answer.item
        rows = OAuthCredential.objects.filter(
            pk=item.target.credential_id, refresh_claim=item.claim
        )
        if rows.update(**_grant_values(answer), refresh_count=F("refresh_count") + 1):
            saved.add(item.target.credential_id)
    return saved


def _column_of(name: str) -> Field[Any, Any]:
    return cast(Field[Any, Any], OAuthCredential._meta.get_field(name))


def _name_of(column: Field[Any, Any]) -> str:
    assert column.column is not None
    return column.column


def _grants_update_sql(fields: list[Field[Any, Any]], *, rows: int) -> str:
    """The one statement that saves `rows` grants: (id, claim, *fields) per row."""
    meta = OAuthCredential._meta
    pk_field, claim_field = _column_of("id"), _column_of("refresh_claim")
    typed = connection.vendor == "postgresql"  # VALUES columns get no type from the target there

    def slot(column: Field[Any, Any]) -> str:
        return f"CAST(%s AS {column.db_type(connection)})" if typed else "%s"

    quote = connection.ops.quote_name
    row_sql = "(" + ", ".join(slot(f) for f in [pk_field, claim_field, *fields]) + ")"
    sets = [f"{quote(_name_of(f))} = v_{_name_of(f)}" for f in fields if f.name != "scopes"]
    scopes = _name_of(_column_of("scopes"))
    sets.append(f"{quote(scopes)} = COALESCE(v_{scopes}, {quote(scopes)})")
    count = quote(_name_of(_column_of("refresh_count")))
    sets.append(f"{count} = {count} + 1")
    pk = quote(_name_of(pk_field))
    # Only names from the model's own metadata are spliced in; every value is a parameter.
    return (
        f"WITH v (v_id, v_claim, {', '.join('v_' + _name_of(f) for f in fields)}) AS "  # noqa: S608
        f"(VALUES {', '.join([row_sql] * rows)}) "
        f"UPDATE {quote(meta.db_table)} SET {', '.join(sets)} FROM v "
        f"WHERE {pk} = v_id "
        f"AND {quote(_name_of(claim_field))} = v_claim RETURNING {pk}"
    )


def _grants_params(
    answers: list[Answer],
    values_rows: list[dict[str, Any]],
    *,
    names: list[str],
    fields: list[Field[Any, Any]],
) -> list[Any]:
    """The parameters of _grants_update_sql, row by row, prepared for the database."""
    params: list[Any] = []
    db = connections[DEFAULT_DB_ALIAS]  # the real wrapper: the proxy costs a lookup per use
    same: dict[tuple[str, Any], Any] = {}  # an answer's times are one value in four columns
    for answer, values in zip(answers, values_rows, strict=True):
        params += [answer.item.target.credential_id, answer.item.claim]
        for name, model_field in zip(names, fields, strict=True):
            value = values.get(name)
            if value is None:
                params.append(None)
            elif isinstance(value, datetime):
                key = (model_field.get_internal_type(), value)
                if key not in same:
                    same[key] = model_field.get_db_prep_save(value, db)
                params.append(same[key])
            else:
                params.append(model_field.get_db_prep_save(value, db))
    return params


def _failure_outcome(answer: Answer) -> CredentialRefreshOutcome:
    error, item = answer.error, answer.item
    assert error is not None
    logger.warning(
        "OAuth refresh of credential %s failed (%s, %s attempt(s), permanent=%s): %s",
        item.target.credential_id,
        error.code,
        error.attempts,
        error.permanent,
        error,
    )
    reason = str(error) or "refresh failed"
    if item.expires_at is not None and item.expires_at > answer.now:
        reason += STALE_NOTE  # only inside the buffer: the old access token still works
    return outcome_failed(item.target, reason, error.permanent, error.code)


def claims_release(items: list[Claimed]) -> None:
    """Give back claims taken but never used (stopped before their refresh started)."""
    by_claim: dict[str, list[int]] = {}
    for item in items:
        by_claim.setdefault(item.claim, []).append(item.target.credential_id)
    for claim, ids in by_claim.items():
        OAuthCredential.objects.filter(pk__in=ids, refresh_claim=claim).update(
            refresh_claim="", refresh_claimed_until=None
        )


def other_flight_outcome(
    target: BatchTarget, row: dict[str, Any], count_seen: int
) -> CredentialRefreshOutcome:
    if row["refresh_count"] != count_seen:  # the flight we waited for refreshed it
        return CredentialRefreshOutcome(
            target.credential_id, target.owner, RefreshOutcomeKind.REFRESHED
        )
    if row["status"] in (CredentialStatus.REFRESH_FAILED, CredentialStatus.INVALID):
        reason = row["last_refresh_error"] or "refresh failed"
        expires_at = row["expires_at"]
        if expires_at is not None and expires_at > timezone.now():
            reason += STALE_NOTE
        permanent = row["status"] == CredentialStatus.INVALID
        return outcome_failed(target, reason, permanent, row["last_refresh_error_code"])
    return outcome_skipped(target, ALREADY_FRESH)
