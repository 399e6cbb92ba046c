"""Server-sent events: the framing, the subscriber's queue, and one open stream's life.

Why hand-written (not sse-starlette): each change is encoded once into bytes shared by
every subscriber and written in place to idle sockets; a per-subscriber generator
would encode and schedule it once per stream, on every kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from flags.publish import json_bytes

if TYPE_CHECKING:
    from flags.edge.state import EdgeState


@dataclass(eq=False)
class Subscriber:
    """One open stream: the kind and digest of its key, its queue of ready-to-send event bytes."""

    kind: str
    digest: str = ""
    queue: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(maxsize=256))
    # The server's send of an idle stream, when it can be written to in place: a change
    # is then written to every such stream from the one task that announces it, rather
    # than by waking one task per stream (set by the stream once its opening is sent).
    send: Any = None

    def deliver(self, message: dict[str, Any], event: bytes) -> None:
        """Write ``event`` now if the stream is idle and its socket accepts it, else queue it."""
        send, queue = self.send, self.queue
        if send is not None and queue.empty() and not send.__self__.flow.write_paused:
            step = send(message)
            try:
                step.send(None)  # completes at once: nothing in it waits when not paused
            except StopIteration:
                return
            step.close()  # it would have waited: never here (checked above); fall back
        queue.put_nowait(event)

    def close(self) -> None:
        """End the stream: drop what it has not sent yet and tell it to finish."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)

    def finish(self, last: bytes) -> None:
        """End the stream after what it has queued, with ``last`` as its final bytes (a
        stream too far behind for that is closed as ``close`` does)."""
        try:
            self.queue.put_nowait(last)
            self.queue.put_nowait(None)
        except asyncio.QueueFull:
            self.close()


def reconnect_hint() -> bytes:
    """The SSE ``retry`` field for a stream the server ends because it stops: reconnect soon
    (another replica takes it), at a random moment within half a second, so that the
    streams of a stopping process do not all reconnect in the same instant."""
    return f"retry: {random.randrange(50, 500)}\n\n".encode()


KEEP_ALIVE = b": keep-alive\n\n"


def sse_event(event: str, version: int, data: dict[str, Any]) -> bytes:
    return f"id: {version}\nevent: {event}\ndata: ".encode() + json_bytes(data) + b"\n\n"


def last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


class SSEStream:
    """One open stream: an event on connect, one per publish, keep-alives; ends on disconnect."""

    def __init__(
        self,
        state: EdgeState,
        environment: str,
        subscriber: Subscriber,
        version: int,
        last_event_id: int | None,
    ) -> None:
        self.state, self.environment, self.subscriber = state, environment, subscriber
        self.kind = subscriber.kind
        self.version, self.last_event_id = version, last_event_id

    def opening_events(self) -> list[bytes]:
        current = self.state.current(self.environment)
        version = current.version if current else self.version
        if (
            self.kind != "client"
            and self.last_event_id is not None
            and self.last_event_id < version
        ):
            chain = self.state.catch_up(self.environment, self.last_event_id, version)
            if chain:
                return chain
        return [
            sse_event("version", version, {"environment": self.environment, "version": version})
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        subscriber = self.subscriber
        self.state.subscribe(self.environment, subscriber)
        disconnected = asyncio.Event()

        async def watch_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            disconnected.set()
            if not subscriber.queue.full():
                subscriber.queue.put_nowait(None)

        watcher = asyncio.create_task(watch_disconnect())
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-cache"),
                        (b"x-accel-buffering", b"no"),
                    ],
                }
            )
            opening = b"retry: 2000\n\n" + b"".join(self.opening_events())
            await send({"type": "http.response.body", "body": opening, "more_body": True})
            if hasattr(getattr(getattr(send, "__self__", None), "flow", None), "write_paused"):
                subscriber.send = send  # uvicorn's: changes are written in place (deliver)
            # No timer per stream: keep-alives come through the queue (EdgeState.keep_alive),
            # so a kill wakes each stream once, with nothing to set up or cancel.
            while not disconnected.is_set():
                event = await subscriber.queue.get()
                if event is None:
                    break
                await send({"type": "http.response.body", "body": event, "more_body": True})
            if not disconnected.is_set():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away mid-write
        finally:
            subscriber.send = None
            self.state.unsubscribe(self.environment, subscriber)
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
