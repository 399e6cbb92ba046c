"""``FlagsvcClient``: local evaluation from a snapshot kept fresh by the stream, with polling,
bootstrap and defaults to fall back on, that never raises into the caller and survives fork().

    >>> client = FlagsvcClient("https://flags.example.com", "srv_...",
    ...     bootstrap="/srv/app/flagsvc-bootstrap.json", defaults={"new-checkout": False})
    >>> client.wait_for_ready(2.0)
    >>> client.is_enabled("new-checkout", {"targetingKey": "user-42", "plan": "pro"})
"""

from __future__ import annotations

import logging
import os
import random
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from flagsvc_sdk.engine import CompiledFlag
from flagsvc_sdk.evaluation import Evaluator, FlagsView, constant_flag
from flagsvc_sdk.snapshot import Snapshot, SnapshotError
from flagsvc_sdk.transport import Transport, TransportError, Unauthorized, parse_json

logger = logging.getLogger("flagsvc_sdk")

ChangeListener = Callable[[frozenset[str]], None]

# Reconnect and retry delays: doubled per consecutive failure from the first, capped, and
# jittered (a random half of each delay) so that a fleet does not retry in step.
FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 30.0

_CLIENTS: weakref.WeakSet[FlagsvcClient] = weakref.WeakSet()


class Status:
    STARTING = "starting"  # no answer from the server yet (bootstrap or defaults serve)
    READY = "ready"  # serving the server's snapshot, stream or polling healthy
    STALE = "stale"  # the server was reachable once, not now: last known values serve
    UNAUTHORIZED = "unauthorized"  # 401/403: the updater stopped; fix the key and restart
    OFFLINE = "offline"  # constructed with offline=True: bootstrap and defaults only
    CLOSED = "closed"


def _load_bootstrap(bootstrap: Any) -> Snapshot | None:
    if bootstrap is None:
        return None
    try:
        if isinstance(bootstrap, Snapshot):
            return bootstrap
        if isinstance(bootstrap, Mapping):
            return Snapshot.from_document(dict(bootstrap))
        if isinstance(bootstrap, bytes):
            return Snapshot.from_bytes(bootstrap)
        return Snapshot.from_bytes(Path(bootstrap).read_bytes())
    except (OSError, SnapshotError) as exc:
        logger.warning("flagsvc: bootstrap %r not used: %s", bootstrap, exc)
        return None


class FlagsvcClient(Evaluator):
    """Evaluates flags locally and keeps the snapshot fresh in a background thread.

    ``url``, ``sdk_key``: the flagsvc server and a server SDK key of one environment.
    ``bootstrap``: a snapshot (file path, JSON bytes or dict) served until the first answer
    and whenever the server is unreachable at start. ``defaults``: values per flag key for
    flags that no snapshot has. ``poll_interval``: seconds between polls when the stream is
    off or down (and the cap of the retry backoff). ``stream``: follow the SSE stream.
    ``timeout``: seconds for each request and the default of ``wait_for_ready``.
    ``offline``: never touch the network (tests, local development).

    The constructor does not block: call ``wait_for_ready(timeout)`` to wait (bounded) for the
    first snapshot. After ``os.fork()`` the child starts its own updater by itself.
    """

    def __init__(
        self,
        url: str | None,
        sdk_key: str | None,
        *,
        bootstrap: str | os.PathLike[str] | bytes | Mapping[str, Any] | Snapshot | None = None,
        defaults: Mapping[str, Any] | None = None,
        poll_interval: float = 30.0,
        stream: bool = True,
        timeout: float = 5.0,
        offline: bool = False,
        stream_read_timeout: float = 60.0,
    ) -> None:
        self._defaults = dict(defaults or {})
        self.poll_interval = max(0.1, float(poll_interval))
        self.stream_enabled = stream
        self.timeout = timeout
        self.offline = offline
        self._transport: Transport | None = None
        if not offline:
            if not url or not sdk_key:
                raise ValueError("FlagsvcClient needs url and sdk_key (or offline=True)")
            self._transport = Transport(
                url, sdk_key, timeout=timeout, stream_read_timeout=stream_read_timeout
            )
        self._overrides: dict[str, Any] = {}
        self._listeners: list[ChangeListener] = []
        self._snapshot: Snapshot | None = _load_bootstrap(bootstrap)
        self._from_server = False  # whether _snapshot came from the server (patches apply)
        self._flags: Mapping[str, CompiledFlag] = self._compose(self._snapshot)
        self._has_snapshot = self._snapshot is not None
        self.status = Status.OFFLINE if offline else Status.STARTING
        self.last_error: str | None = None
        self._init_sync_primitives()
        self._thread: threading.Thread | None = None
        self._running = False
        _CLIENTS.add(self)
        if not offline:
            self._start()

    # -- lifecycle

    def _init_sync_primitives(self) -> None:
        self._lock = threading.RLock()  # writers only; evaluation never takes it
        self._ready = threading.Event()  # set once the server's snapshot is installed
        self._settled = threading.Event()  # ready, or stopped for good (401/403)
        self._stop = threading.Event()
        if self.offline:
            self._ready.set()
            self._settled.set()

    def _start(self) -> None:
        self._running = True
        self._thread = threading.Thread(
            target=self._run, name=f"flagsvc-updater-{os.getpid()}", daemon=True
        )
        self._thread.start()

    def _after_fork_in_child(self) -> None:
        # Threads do not survive fork(): the child gets fresh locks (the parent's updater may
        # have held one at that instant) and an updater of its own; the snapshot it inherited
        # keeps serving meanwhile.
        ready, settled = self._ready.is_set(), self._settled.is_set()
        self._init_sync_primitives()
        if ready:
            self._ready.set()
        if settled:
            self._settled.set()
        self._thread = None
        if self._transport is not None:
            self._transport.forget_stream()
        if self._running:
            self._start()

    def wait_for_ready(self, timeout: float | None = None) -> bool:
        """Wait (at most ``timeout`` seconds, default the client's) for the server's snapshot.

        Returns True when it is installed, False otherwise (bootstrap or defaults serve).

            >>> client.wait_for_ready(2.0)  # doctest: +SKIP
            True
        """
        self._settled.wait(self.timeout if timeout is None else timeout)
        return self._ready.is_set()

    @property
    def is_ready(self) -> bool:
        return self._ready.is_set()

    def close(self) -> None:
        """Stop the updater and its connections; evaluation keeps answering from memory."""
        self._running = False
        self._stop.set()
        if self._transport is not None:
            self._transport.interrupt_stream()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.timeout + 1.0)
        self.status = Status.CLOSED
        _CLIENTS.discard(self)

    def __enter__(self) -> FlagsvcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading state

    @property
    def snapshot(self) -> Snapshot | None:
        """The snapshot being served (None when there is none yet)."""
        return self._snapshot

    @property
    def version(self) -> int | None:
        snapshot = self._snapshot
        return snapshot.version if snapshot else None

    def view(self) -> FlagsView:
        """The current flags, pinned: a request evaluates everything against one version."""
        return FlagsView(self._flags, self._defaults, self._has_snapshot)

    def on_change(self, callback: ChangeListener) -> Callable[[], None]:
        """Call ``callback(changed_flag_keys)`` (in the updater thread) after each new snapshot.

        Returns a function that removes the callback.

            >>> client.on_change(lambda keys: print("changed:", sorted(keys)))  # doctest: +SKIP
        """
        with self._lock:
            self._listeners = [*self._listeners, callback]

        def remove() -> None:
            with self._lock:
                self._listeners = [c for c in self._listeners if c is not callback]

        return remove

    # -- overrides (tests)

    def override(self, key: str, value: Any) -> None:
        """Serve ``value`` for ``key`` to everyone until ``clear_override`` (for tests)."""
        with self._lock:
            self._overrides[key] = value
            self._flags = self._compose(self._snapshot)

    def clear_override(self, key: str | None = None) -> None:
        """Remove one override (or all with no key)."""
        with self._lock:
            if key is None:
                self._overrides.clear()
            else:
                self._overrides.pop(key, None)
            self._flags = self._compose(self._snapshot)

    @property
    def overrides(self) -> dict[str, Any]:
        return dict(self._overrides)

    def _compose(self, snapshot: Snapshot | None) -> Mapping[str, CompiledFlag]:
        flags: Mapping[str, CompiledFlag] = snapshot.engine.flags if snapshot else {}
        if self._overrides:
            flags = {
                **flags,
                **{key: constant_flag(key, value) for key, value in self._overrides.items()},
            }
        return flags

    # -- installing snapshots

    def _install(self, snapshot: Snapshot, *, from_server: bool) -> None:
        with self._lock:
            previous = self._snapshot
            self._snapshot = snapshot
            self._from_server = from_server
            self._flags = self._compose(snapshot)
            self._has_snapshot = True
            listeners = self._listeners
        if previous is None:
            changed = frozenset(snapshot.document["flags"])
        else:
            changed = previous.changed_keys(snapshot)
        if from_server:
            logger.debug("flagsvc: installed %s version %s", snapshot.environment, snapshot.version)
        if changed:
            self._notify(listeners, changed)

    def _notify(self, listeners: Iterable[ChangeListener], changed: frozenset[str]) -> None:
        for listener in listeners:
            try:
                listener(changed)
            except Exception:
                logger.exception("flagsvc: an on_change callback raised")

    def _mark_ready(self) -> None:
        if self.status != Status.READY:
            if self.status == Status.STALE:
                logger.info("flagsvc: the server answers again")
            self.status = Status.READY
        self.last_error = None
        self._ready.set()
        self._settled.set()

    # -- the updater thread

    def _fetch(self) -> None:
        assert self._transport is not None
        snapshot = self._snapshot
        etag = snapshot.etag if (snapshot is not None and self._from_server) else None
        answer = self._transport.fetch_snapshot(etag)
        if answer.body is not None:
            self._install(Snapshot.from_bytes(answer.body, answer.etag), from_server=True)
        self._mark_ready()

    def _delay(self, failures: int) -> float:
        cap = min(MAX_RETRY_SECONDS, self.poll_interval)
        delay = min(cap, FIRST_RETRY_SECONDS * 2 ** max(0, failures - 1))
        return delay / 2 + random.random() * delay / 2

    def _run(self) -> None:
        failures = 0
        need_fetch = True
        while not self._stop.is_set():
            connected = [False]
            try:
                if need_fetch or not self.stream_enabled:
                    self._fetch()
                    need_fetch = False
                    failures = 0
                if not self.stream_enabled:
                    interval = self.poll_interval
                    self._stop.wait(interval * (0.9 + random.random() * 0.2))
                    continue
                self._follow_stream(connected)
            except Unauthorized as exc:
                self.status = Status.UNAUTHORIZED
                self.last_error = str(exc)
                logger.error(
                    "flagsvc: the server refused the SDK key (%s); flag updates are stopped, "
                    "the last known values and defaults keep serving. Use a live server SDK key "
                    "of this environment and restart.",
                    exc,
                )
                self._running = False
                self._settled.set()
                return
            except (TransportError, SnapshotError) as exc:
                self.last_error = str(exc)
                if self._stop.is_set():
                    return
                if connected[0] and isinstance(exc, TransportError):
                    failures = 0  # a stream that worked and ended: reconnect, with Last-Event-ID
                else:
                    failures += 1
                    need_fetch = True
                    if self._ready.is_set() and self.status == Status.READY:
                        self.status = Status.STALE
                    log = logger.warning if failures == 1 else logger.debug
                    log("flagsvc: %s (attempt %d; retrying with backoff)", exc, failures)
            except Exception:  # a bug here must not end the updater
                logger.exception("flagsvc: unexpected error in the updater")
                failures += 1
                need_fetch = True
            self._stop.wait(self._delay(max(1, failures)))

    def _follow_stream(self, connected: list[bool]) -> None:
        assert self._transport is not None
        snapshot = self._snapshot
        last_seen = snapshot.version if (snapshot is not None and self._from_server) else None
        for event in self._transport.stream(last_seen):
            if self._stop.is_set():
                return
            if not connected[0]:
                connected[0] = True
                if self._from_server:
                    self._mark_ready()
            if event.event == "patch":
                self._on_patch(parse_json(event.data))
            elif event.event == "version":
                self._on_version(parse_json(event.data))

    def _on_version(self, data: dict[str, Any] | None) -> None:
        snapshot = self._snapshot
        version = data.get("version") if data else None
        if snapshot is None or not self._from_server or version != snapshot.version:
            self._fetch()

    def _on_patch(self, data: dict[str, Any] | None) -> None:
        snapshot = self._snapshot
        if data is None or snapshot is None or not self._from_server:
            self._fetch()
            return
        version = data.get("version")
        if isinstance(version, int) and version <= snapshot.version:
            return  # already have it (a catch-up overlapping what we fetched)
        if data.get("previous_version") != snapshot.version:
            logger.debug(
                "flagsvc: patch to %s follows %s, we hold %s: refetching",
                version,
                data.get("previous_version"),
                snapshot.version,
            )
            self._fetch()
            return
        try:
            patched = snapshot.patched(data)
        except SnapshotError as exc:
            logger.warning("flagsvc: patch to version %s refused (%s); refetching", version, exc)
            self._fetch()
            return
        self._install(patched, from_server=True)


def _after_fork_in_child() -> None:
    for client in list(_CLIENTS):
        client._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
