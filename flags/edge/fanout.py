"""Keeps one process's edge state current: pub/sub messages, a database version watch, token usage.

With Redis, changes arrive on its channel within milliseconds and the database
watch is a slow safety net. Without Redis (or while it is down) the watch runs
twice a second, so a kill still reaches every process within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from django.conf import settings

from flags import emergency, propagation, publish
from flags.edge.state import (
    EdgeState,
    drop_queued_work,
    environment_identities,
    load_payload,
    run_db,
)
from flags.selectors import api_token_fingerprint
from flags.tokens import live_token_principals

logger = logging.getLogger("flags.edge")
REPLAY_SECONDS = 1.0
SHUTDOWN_STEP_SECONDS = 2.0
COMPRESS_AFTER_SECONDS = 0.2


def database_ping() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


async def cancel_until_done(tasks: list[Any], attempts: int = 20) -> None:
    """Cancel ``tasks`` and wait for them, cancelling again any that go on (see Fanout)."""
    pending = {task for task in tasks if not task.done()}
    for _ in range(attempts):
        if not pending:
            return
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.5)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: a loop that failed was logged where it failed
    if pending:
        logger.warning(
            "edge tasks still running at shutdown: %s", sorted(t.get_name() for t in pending)
        )


class Fanout:
    def __init__(self, state: EdgeState) -> None:
        self.state = state
        self.redis_url: str = settings.REDIS_URL
        self.redis_healthy = False
        self.tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tokens_fingerprint: tuple[Any, ...] | None = None
        self._redis: Any = None
        self._tokens_lock = asyncio.Lock()
        self._last_verify = 0.0
        self._verify_task: asyncio.Future[None] | None = None
        self._verify_again = False
        self.stopping = False
        self.name = propagation.edge_name()
        self._report_due = asyncio.Event()
        announced = state.on_version

        def on_version(environment: str, version: int) -> None:
            announced(environment, version)
            self._report_due.set()

        state.on_version = on_version

    # -- lifecycle
    # Every loop below runs ``while not self.stopping``: a cancellation can be lost on
    # Python 3.11 (a timeout expiring in the same instant swallows it, as in redis-py's
    # reads), so stop() also says so with a flag and cancels again until the tasks end.

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        publish.local_store().listeners.append(self._local_message)
        try:
            await self.resync()
        except Exception:
            logger.warning("edge start-up sync failed; retrying in the background", exc_info=True)
        self.tasks = [asyncio.create_task(self._watch_versions(), name="edge-version-watch")]
        self.tasks.append(asyncio.create_task(self._flush_usage(), name="edge-token-usage"))
        self.tasks.append(asyncio.create_task(self._report(), name="edge-report"))
        self.tasks.append(asyncio.create_task(self._keep_alive(), name="edge-keep-alive"))
        if self.redis_url:
            self.tasks.append(asyncio.create_task(self._replay(), name="edge-journal-replay"))
        if self.redis_url:
            self.tasks.append(asyncio.create_task(self._listen_redis(), name="edge-redis-listener"))

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            publish.local_store().listeners.remove(self._local_message)
        self.stopping = True
        await cancel_until_done(
            [*self.tasks, *([self._verify_task] if self._verify_task is not None else [])]
        )
        # Bounded: with the database unreachable each call would wait out its timeouts, and
        # a process asked to stop must stop (its registry entry also expires on its own).
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._flush_usage_once(), SHUTDOWN_STEP_SECONDS)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                run_db(propagation.report_remove, self.name), SHUTDOWN_STEP_SECONDS
            )
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()
        drop_queued_work()  # database calls still queued would hold the interpreter's exit

    # -- messages

    def _local_message(self, message: dict[str, Any]) -> None:
        # Called from whichever thread committed the change (e.g. a Django view).
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self.handle(message)))

    async def handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "tokens":
            await self.reload_tokens()
            return
        if kind != "snapshot":
            return
        if self._tokens_lock.locked():
            # A revocation announced before this change closes its streams before the
            # change is sent: the revoked key must never receive it.
            async with self._tokens_lock:
                pass
        environment, version = message["environment"], int(message["version"])
        identity = (message.get("lineage", ""), version, message.get("revision", ""))
        current = self.state.current(environment)
        if current is not None and current.identity == identity:
            return
        if current is not None and current.lineage != identity[0]:
            # Another deployment sharing this Redis, or this database was recreated: only
            # the database can tell, and the watch asks it.
            self.verify_soon()
            return
        if current is not None and current.version >= version:
            self.verify_soon()  # same history, other revision: a restored database
            return
        delta = message.get("delta")
        announced = False
        if current is not None and delta and delta.get("previous_version") == current.version:
            # The next version of what this process serves: streams that apply the delta
            # need nothing else, so they are told before the snapshot bytes are fetched.
            self.state.announce_change(environment, version, delta, readers="patch")
            announced = True
        payload = await self._fetch(environment, identity)
        if payload is None:
            return
        snapshot = self.state.install(payload)
        if snapshot is not None:
            if announced:  # the streams that ask this process again, now that it can answer
                self.state.announce(snapshot, delta, readers="version")
            else:
                self.state.announce(snapshot, delta if payload.identity == identity else None)
            self.compress_soon(payload)

    @staticmethod
    def compress_soon(payload: publish.SnapshotPayload) -> None:
        """Make the gzip body in a thread (zlib releases the GIL), not on the event loop, and
        not while the streams are being written to: a moment after the fan-out."""
        loop = asyncio.get_running_loop()
        loop.call_later(
            COMPRESS_AFTER_SECONDS, lambda: loop.run_in_executor(None, lambda: payload.gzip_body)
        )

    def verify_soon(self) -> None:
        """Compare with the database now rather than at the next watch (at most once a second;
        a request made meanwhile is kept, never dropped)."""
        if self._verify_task is not None and not self._verify_task.done():
            self._verify_again = True
            return
        delay = max(0.0, 1.0 - (time.monotonic() - self._last_verify))
        self._verify_task = asyncio.ensure_future(self._verify(delay))

    async def _verify(self, delay: float) -> None:
        await asyncio.sleep(delay)
        while not self.stopping:
            self._last_verify = time.monotonic()
            self._verify_again = False
            try:
                await self.resync()
            except Exception:
                logger.warning("edge verification against the database failed", exc_info=True)
                self._verify_again = True  # the database may be out: try again
            if not self._verify_again:
                return
            await asyncio.sleep(1.0)

    async def _fetch(
        self, environment: str, identity: publish.Identity
    ) -> publish.SnapshotPayload | None:
        local = publish.local_store().payload(environment, identity)
        if local is not None:
            return local
        if self._redis is not None:
            try:
                body = await self._redis.get(publish.redis_key(environment, identity))
                if body is not None:
                    lineage, version, revision = identity
                    return publish.SnapshotPayload(
                        environment, version, body, lineage=lineage, revision=revision
                    )
            except Exception:
                logger.warning(
                    "could not read %s v%s from Redis; using the database", environment, identity[1]
                )
        return await run_db(load_payload, environment)

    async def reload_tokens(self) -> None:
        # One reload at a time: a slow earlier read must never overwrite a later one
        # (that could bring a just-revoked token back).
        async with self._tokens_lock:
            fingerprint = await run_db(api_token_fingerprint)
            self.state.set_tokens(await run_db(live_token_principals))
            self._tokens_fingerprint = fingerprint

    async def resync(self) -> None:
        """Compare every environment's snapshot with the database's; load what differs.

        Newer versions of the same history arrive with a delta for the streams. A
        snapshot this process holds that the database does not (a restored or
        recreated database, another deployment's) is replaced by the database's, and
        streams are told to refetch.
        """
        # Tokens first: a key revoked before a change must not receive that change.
        fingerprint = await run_db(api_token_fingerprint)
        if fingerprint != self._tokens_fingerprint or not self.state.tokens_loaded:
            await self.reload_tokens()
        self.state.triggers, self.state.tags = await run_db(emergency.edge_context)
        identities = await run_db(environment_identities)
        for environment, identity in identities.items():
            current = self.state.current(environment)
            if current is not None and current.identity == identity:
                continue
            payload = await run_db(load_payload, environment)
            if payload is None:
                continue
            forward = (
                current is not None
                and current.lineage == payload.lineage
                and current.version < payload.version
            )
            snapshot = self.state.install(payload, verified=True)
            if snapshot is None or current is None:
                continue
            if forward:
                # No message carried a delta: work it out from the version we had.
                self.state.announce(
                    snapshot, publish.snapshot_delta(current.document, snapshot.document)
                )
            else:
                logger.warning(
                    "edge held %s v%s (%s) but the database has v%s (%s): replaced",
                    environment,
                    current.version,
                    current.revision,
                    snapshot.version,
                    snapshot.revision,
                )
                self.state.history[environment].clear()  # that history's patches no longer apply
                self.state.announce(snapshot, None)

    # -- background loops

    async def _watch_versions(self) -> None:
        while not self.stopping:
            healthy = bool(self.redis_url) and self.redis_healthy
            await asyncio.sleep(
                settings.EDGE_WATCH_SECONDS if healthy else settings.EDGE_FALLBACK_WATCH_SECONDS
            )
            try:
                await self.resync()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("edge version watch failed; retrying", exc_info=True)

    async def _listen_redis(self) -> None:
        import redis.asyncio as aioredis

        backoff = 0.2
        while not self.stopping:
            pubsub = None
            try:
                self._redis = aioredis.Redis.from_url(
                    self.redis_url, socket_connect_timeout=1, health_check_interval=10
                )
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(publish.CHANNEL)
                self.redis_healthy = True
                backoff = 0.2
                logger.info("edge subscribed to %s", publish.CHANNEL)
                await self.resync()  # anything published while we were not listening
                while not self.stopping:
                    message = await pubsub.get_message(timeout=10.0)
                    if message is None:
                        await pubsub.ping()
                        continue
                    if message.get("type") == "message":
                        await self.handle(publish.json_loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if self.redis_healthy:
                    logger.warning(
                        "edge lost Redis (%s); watching the database until it is back", error
                    )
                self.redis_healthy = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()

    async def _report(self) -> None:
        """Tell the registry what this process serves: right after each install, else once a second."""
        while not self.stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._report_due.wait(), propagation.HEARTBEAT_SECONDS)
            self._report_due.clear()
            report = propagation.EdgeReport(
                self.name,
                time.time(),
                {
                    key: (
                        snapshot.lineage,
                        snapshot.version,
                        snapshot.revision,
                        snapshot.installed_at,
                    )
                    for key, snapshot in self.state.environments.items()
                },
            )
            try:
                await run_db(propagation.report_store, report)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("could not report to the edge registry", exc_info=True)
                await asyncio.sleep(propagation.HEARTBEAT_SECONDS)

    async def _keep_alive(self) -> None:
        last = time.monotonic()
        while not self.stopping:
            await asyncio.sleep(min(1.0, settings.STREAM_KEEPALIVE_SECONDS))
            if time.monotonic() - last >= settings.STREAM_KEEPALIVE_SECONDS:
                self.state.keep_alive()
                last = time.monotonic()

    async def _replay(self) -> None:
        """Record kills made while the database was out, as soon as it is back (every process tries).

        Also tells this process, within a second, whether its database answers.
        """
        failing = False
        while not self.stopping:
            await asyncio.sleep(REPLAY_SECONDS)
            try:
                await run_db(database_ping)
                self.state.database_ok = True
            except asyncio.CancelledError:
                raise
            except Exception:
                self.state.database_ok = False
                continue
            try:
                if not await asyncio.get_running_loop().run_in_executor(
                    None, emergency.journal_pending
                ):
                    continue
                recorded = await run_db(emergency.journal_replay)
                if recorded:
                    logger.warning("recorded %d emergency change(s) in the database", recorded)
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if not failing:  # once per outage, not every few seconds
                    logger.warning("emergency journal waits for the database: %s", error)
                failing = True

    async def _flush_usage(self) -> None:
        while not self.stopping:
            await asyncio.sleep(60)
            await self._flush_usage_once()

    async def _flush_usage_once(self) -> None:
        seen, self.state.used_digests = self.state.used_digests, {}
        if not seen:
            return
        from flags.services import token_last_used_update

        try:
            await run_db(lambda: token_last_used_update(seen=seen))
        except Exception:
            logger.warning("could not record token usage", exc_info=True)
