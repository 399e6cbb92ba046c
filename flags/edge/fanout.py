"""Keeps one process's edge state current: pub/sub messages, a database version watch, token usage.

With Redis, changes arrive on its channel within milliseconds and the database
watch is a slow safety net. Without Redis (or while it is down) the watch runs
twice a second, so a kill still reaches every process within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from django.conf import settings

from flags import publish
from flags.edge.state import (
    EdgeState,
    environment_versions,
    load_payload,
    run_db,
    token_fingerprint,
)
from flags.tokens import live_token_principals

logger = logging.getLogger("flags.edge")


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

    # -- lifecycle

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        publish.local_store().listeners.append(self._local_message)
        try:
            await self.resync()
        except Exception:
            logger.warning("edge start-up sync failed; retrying in the background", exc_info=True)
        self.tasks = [asyncio.create_task(self._watch_versions(), name="edge-version-watch")]
        self.tasks.append(asyncio.create_task(self._flush_usage(), name="edge-token-usage"))
        if self.redis_url:
            self.tasks.append(asyncio.create_task(self._listen_redis(), name="edge-redis-listener"))

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            publish.local_store().listeners.remove(self._local_message)
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._flush_usage_once()
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()

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
        current = self.state.current(environment)
        if current is not None and current.version >= version:
            return
        payload = await self._fetch(environment, version)
        if payload is None:
            return
        snapshot = self.state.install(payload)
        if snapshot is not None:
            self.state.announce(
                snapshot, message.get("delta") if payload.version == version else None
            )

    async def _fetch(self, environment: str, version: int) -> publish.SnapshotPayload | None:
        local = publish.local_store().current(environment)
        if local is not None and local.version >= version:
            return local
        if self._redis is not None:
            try:
                _, json_key, gzip_key = publish.redis_keys(environment, version)
                body, gzip_body = await self._redis.mget(json_key, gzip_key)
                if body is not None and gzip_body is not None:
                    return publish.SnapshotPayload(environment, version, body, gzip_body)
            except Exception:
                logger.warning(
                    "could not read %s v%s from Redis; using the database", environment, version
                )
        return await run_db(load_payload, environment)

    async def reload_tokens(self) -> None:
        # One reload at a time: a slow earlier read must never overwrite a later one
        # (that could bring a just-revoked token back).
        async with self._tokens_lock:
            fingerprint = await run_db(token_fingerprint)
            self.state.set_tokens(await run_db(live_token_principals))
            self._tokens_fingerprint = fingerprint

    async def resync(self) -> None:
        """Compare every environment's version with the database; load what is newer."""
        # Tokens first: a key revoked before a change must not receive that change.
        fingerprint = await run_db(token_fingerprint)
        if fingerprint != self._tokens_fingerprint or not self.state.tokens_loaded:
            await self.reload_tokens()
        versions = await run_db(environment_versions)
        for environment, version in versions.items():
            current = self.state.current(environment)
            if current is None or current.version < version:
                payload = await run_db(load_payload, environment)
                if payload is not None:
                    snapshot = self.state.install(payload)
                    if snapshot is not None and current is not None:
                        # No message carried a delta: work it out from the version we had.
                        delta = publish.snapshot_delta(current.document, snapshot.document)
                        self.state.announce(snapshot, delta)

    # -- background loops

    async def _watch_versions(self) -> None:
        while True:
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
        while True:
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
                while True:
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

    async def _flush_usage(self) -> None:
        while True:
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
