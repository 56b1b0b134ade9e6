"""Refreshing many credentials on one asyncio event loop (what the refresh_tokens command and the
admin's bulk action run), single flight with everyone else:

    claimer --claimed, decrypted credentials--> `concurrency` workers (aiohttp, one session)
            --answers--> saver --small batches--> the database thread --> committed

Django's ORM is synchronous, so every query runs in one database thread of its own, in few
statements: a chunk of credentials is claimed with one UPDATE, using the same claim columns and
TTL as the single refresh (services/refresh.py), so a task or another host refreshing the same
credential meanwhile waits for our outcome instead of sending the refresh token again; the
claimed rows are read back, decrypted, with one SELECT. A credential someone else holds the
claim on is waited for, as the single refresh does, and takes that flight's outcome.

Rotated tokens are durable quickly: the token endpoint has spent the old refresh token the moment
it answers, so until the answer is committed the only copy of the new one is in this process.
The saver never waits to fill a batch: it writes whatever has arrived (at most _SAVE_BATCH_MAX
answers, one transaction) as soon as the previous batch is committed, and no new request
starts while a full batch waits, which keeps every answer unsaved for less than
ROTATION_SAVE_MAX_SECONDS (tests/oauth_tokens/test_refresh_batch.py measures it from outside).
A commit stalled by the machine (an fsync, a starved process) can take longer: such answers are
counted (summary.saves_over_bound) and logged as a warning.

A claim is never held longer than its TTL: each refresh must end within
config.max_total_seconds of its chunk's claim (passed to the client as a deadline, however long
it waited for a free worker), and the TTL adds a request timeout and 5 s for the save.
Stopping (Ctrl-C, `stop`) starts nothing new, gives back the claims not started, and waits for
the refreshes in flight to be saved.
"""

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from oauth_tokens.token_client import (
    EDGE_BLOCKED,
    RefreshError,
    token_refresh_request_async,
    token_session_new,
)

from .refresh import refresh_config
from .refresh_batch_db import (
    DELETED,
    Answer,
    BatchTarget,
    Claimed,
    Held,
    answers_save,
    chunk_claim,
    claims_release,
    other_flight_outcome,
    other_flight_read,
    outcome_failed,
    outcome_skipped,
)
from .refresh_outcome import CredentialRefreshOutcome

logger = logging.getLogger("oauth_tokens.services")

# The longest a token endpoint's answer (so a rotated refresh token) may wait to be committed.
ROTATION_SAVE_MAX_SECONDS = 0.2
# Answers written in one transaction at most: bounds how long one batch takes to commit.
_SAVE_BATCH_MAX = 64
# Waiting for someone else's claim to end, as the single refresh polls.
_POLL_FIRST_SECONDS = 0.05
_POLL_MAX_SECONDS = 0.25


def _connection_close() -> None:
    connection.close()  # resolved in the calling thread: the database thread's own connection


class _BatchRun:
    def __init__(
        self,
        *,
        force: bool,
        buffer: timedelta,
        concurrency: int,
        stop: threading.Event,
        on_outcome: Callable[[CredentialRefreshOutcome], None],
    ) -> None:
        self.force, self.buffer, self.concurrency = force, buffer, concurrency
        self.stop, self.on_outcome = stop, on_outcome
        self.config = refresh_config()
        self.answers: list[Answer] = []
        self.answers_ready = asyncio.Event()
        self.answering_done = False
        self.saves_caught_up = asyncio.Event()  # set while less than a batch waits unsaved
        self.saves_caught_up.set()
        self.unstarted: list[Claimed] = []
        self.waiters: set[asyncio.Task[None]] = set()
        self.slowest_save = 0.0
        self.saves_over_bound = 0  # answers that waited longer than the bound to be committed
        self.failure: BaseException | None = None
        # The first refusal by the token endpoint's edge: the same client meets the same wall,
        # so no further request is sent in this run.
        self.edge_block: RefreshError | None = None
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="oauth-refresh-db")

    async def db[T](self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(fn, *args, **kwargs))

    def _give_up(self, exc: BaseException) -> None:
        """Start nothing new, let the refreshes in flight end and be saved, raise at the end."""
        logger.exception("OAuth batch refresh: stopping after an error")
        self.failure = self.failure or exc
        self.stop.set()

    def take(self, outcome: CredentialRefreshOutcome) -> None:
        try:
            self.on_outcome(outcome)
        except BaseException as exc:  # noqa: BLE001  say, a closed stdout: no new work, raise at the end
            self.failure = self.failure or exc
            self.stop.set()

    async def main(self, targets: list[BatchTarget]) -> None:
        try:
            async with token_session_new(concurrency=self.concurrency) as session:
                self.session = session
                self.queue: asyncio.Queue[Claimed | None] = asyncio.Queue(self.concurrency)
                saver = asyncio.create_task(self._saver())
                work = asyncio.gather(
                    self._claimer(targets), *(self._worker() for _ in range(self.concurrency))
                )
                await self._finish(work)
                while self.waiters:
                    await self._finish(asyncio.gather(*self.waiters))
                self.answering_done = True
                self.answers_ready.set()
                await self._finish(saver)
                if self.unstarted:
                    await self.db(claims_release, self.unstarted)
        finally:
            await self.db(_connection_close)
            self.executor.shutdown()

    async def _finish(self, work: asyncio.Future[Any]) -> None:
        """Await `work`; if this run is cancelled (Ctrl-C without a handler of the caller's),
        stop taking new work but still let what is in flight end and be saved."""
        while True:
            try:
                await asyncio.shield(work)
                return
            except asyncio.CancelledError:
                self.stop.set()

    async def _claimer(self, targets: list[BatchTarget]) -> None:
        try:
            for start in range(0, len(targets), self.concurrency):
                if self.stop.is_set():
                    break
                try:
                    claimed, outcomes, held = await self.db(
                        chunk_claim,
                        targets[start : start + self.concurrency],
                        force=self.force,
                        buffer=self.buffer,
                        config=self.config,
                    )
                except Exception as exc:  # noqa: BLE001  the database went away, say
                    self._give_up(exc)
                    break
                for outcome in outcomes:
                    self.take(outcome)
                for other in held:
                    task = asyncio.create_task(self._other_flight_guarded(other))
                    self.waiters.add(task)
                    task.add_done_callback(self.waiters.discard)
                for n, item in enumerate(claimed):
                    if self.stop.is_set():
                        self.unstarted.extend(claimed[n:])
                        break
                    await self.queue.put(item)
        finally:
            for _ in range(self.concurrency):
                await self.queue.put(None)

    async def _worker(self) -> None:
        while (item := await self.queue.get()) is not None:
            # Backpressure: when the database falls behind, start no new request until it has
            # caught up, so answers (rotated tokens) never pile up unsaved.
            await self.saves_caught_up.wait()
            if self.stop.is_set():
                self.unstarted.append(item)
                continue
            if self.edge_block is not None:
                self._not_tried(item, self.edge_block)
                continue
            answer = await self._refresh(item)
            if answer.error is not None and answer.error.code == EDGE_BLOCKED:
                self.edge_block = self.edge_block or answer.error
            self._answer_add(answer)

    def _not_tried(self, item: Claimed, edge_block: RefreshError) -> None:
        """A refresh not sent after the edge refused this client: its claim is given back at
        the end and the credential is left as it was (its token was never sent)."""
        self.unstarted.append(item)
        reason = f"Not tried in this run. {edge_block}"
        self.take(outcome_failed(item.target, reason, code=EDGE_BLOCKED))

    async def _refresh(self, item: Claimed) -> Answer:
        try:
            grant = await token_refresh_request_async(
                refresh_token=item.refresh_token,
                config=self.config,
                session=self.session,
                deadline=item.deadline,
            )
        except RefreshError as exc:
            return Answer(item, time.monotonic(), timezone.now(), error=exc)
        except Exception as exc:  # one broken credential must not stop the others
            logger.exception("Refreshing OAuth credential %s failed", item.target.credential_id)
            return Answer(item, time.monotonic(), timezone.now(), unexpected=type(exc).__name__)
        return Answer(item, time.monotonic(), timezone.now(), grant=grant)

    def _answer_add(self, answer: Answer) -> None:
        self.answers.append(answer)
        self.answers_ready.set()
        if len(self.answers) >= _SAVE_BATCH_MAX:
            self.saves_caught_up.clear()

    async def _saver(self) -> None:
        while True:
            if not self.answers:
                if self.answering_done:
                    return
                self.answers_ready.clear()
                await self.answers_ready.wait()
                continue
            # Whatever has arrived, now: never wait for a batch to fill.
            batch = self.answers[:_SAVE_BATCH_MAX]
            del self.answers[:_SAVE_BATCH_MAX]
            try:
                outcomes, committed_at = await self.db(answers_save, batch)
            except Exception as exc:
                logger.exception("Saving %d OAuth refresh outcome(s) failed", len(batch))
                reason = f"refreshed, but saving failed ({type(exc).__name__})"
                outcomes, committed_at = (
                    [outcome_failed(a.item.target, reason) for a in batch],
                    None,
                )
            if committed_at is not None:
                waits = [committed_at - answer.at for answer in batch]
                slowest = max(waits)
                if slowest > ROTATION_SAVE_MAX_SECONDS:
                    self.saves_over_bound += sum(w > ROTATION_SAVE_MAX_SECONDS for w in waits)
                    logger.warning(
                        "OAuth refresh: %d answer(s) took %.0f ms to be saved (aim: %.0f ms)",
                        len(batch),
                        slowest * 1000,
                        ROTATION_SAVE_MAX_SECONDS * 1000,
                    )
                self.slowest_save = max(self.slowest_save, slowest)
            if len(self.answers) < _SAVE_BATCH_MAX:
                self.saves_caught_up.set()
            for outcome in outcomes:
                self.take(outcome)

    async def _other_flight_guarded(self, held: Held) -> None:
        try:
            await self._other_flight_wait(held)
        except Exception as exc:  # noqa: BLE001  the batch stops and reports it
            self._give_up(exc)

    async def _other_flight_wait(self, held: Held) -> None:
        """Wait for someone else's claim to end and take its outcome (never a second request);
        if it lapsed (its holder died), claim the credential and refresh it ourselves."""
        target, pause = held.target, _POLL_FIRST_SECONDS
        while not self.stop.is_set():
            await asyncio.sleep(pause)
            pause = min(pause * 2, _POLL_MAX_SECONDS)
            row = await self.db(other_flight_read, target.credential_id)
            if row is None:
                self.take(outcome_skipped(target, DELETED))
                return
            if not row["refresh_claim"]:
                self.take(other_flight_outcome(target, row, held.refresh_count))
                return
            until = row["refresh_claimed_until"]
            if until is not None and until > timezone.now():
                continue
            claimed, outcomes, again = await self.db(
                chunk_claim, [target], force=self.force, buffer=self.buffer, config=self.config
            )
            for outcome in outcomes:
                self.take(outcome)
            for item in claimed:
                self._answer_add(await self._refresh(item))
            if not again:
                return
            held = again[0]


def _loop_run(main: Coroutine[Any, Any, None]) -> None:
    """asyncio.run here, or in a thread of its own when this thread already runs a loop (an
    async server's thread, or Playwright's sync API in the browser tests): asyncio.run refuses
    to nest, and the batch must not depend on where it is called from."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(main)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="refresh-batch") as pool:
        pool.submit(asyncio.run, main).result()


def credentials_refresh_batch(
    *,
    targets: list[BatchTarget],
    force: bool,
    buffer: timedelta,
    concurrency: int,
    stop: threading.Event,
    on_outcome: Callable[[CredentialRefreshOutcome], None],
) -> tuple[float, int]:
    """Refresh `targets` (in order) on one event loop, `concurrency` token
    requests at a time; on_outcome is called on the loop's thread, once per credential that got
    an outcome.
    Returns the longest an answer waited to be committed (seconds), and how many answers waited
    longer than ROTATION_SAVE_MAX_SECONDS."""
    run = _BatchRun(
        force=force, buffer=buffer, concurrency=concurrency, stop=stop, on_outcome=on_outcome
    )
    _loop_run(run.main(targets))
    if run.failure is not None:
        raise run.failure
    return run.slowest_save, run.saves_over_bound
