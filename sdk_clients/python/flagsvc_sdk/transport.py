"""The two requests the client makes: the snapshot (ETag, gzip) and the SSE stream.

Standard library only (``http.client``): two GET requests and a line reader do not justify
an HTTP dependency in every service that imports the SDK.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flagsvc_sdk import __version__

SNAPSHOT_PATH = "/api/v1/sdk/snapshot/"
STREAM_PATH = "/api/v1/sdk/stream/"
USER_AGENT = f"flagsvc-sdk-python/{__version__}"


class Unauthorized(Exception):
    """The server refused the key (401/403): retrying cannot help."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class TransportError(Exception):
    """The server could not be reached or answered something unusable; retry later."""


@dataclass(frozen=True)
class SnapshotAnswer:
    """200 with a body, or 304 (``body`` None) when the ETag still names the current version."""

    body: bytes | None
    etag: str | None


@dataclass(frozen=True)
class StreamEvent:
    event: str
    data: str
    id: str | None


def _error_message(status: int, body: bytes) -> str:
    try:
        document = json.loads(body)
        return str(document.get("message") or document.get("detail") or document)
    except Exception:
        return body[:200].decode("utf-8", "replace") or http.client.responses.get(status, "")


class Transport:
    """HTTP to one flagsvc server with one SDK key."""

    def __init__(
        self, url: str, sdk_key: str, *, timeout: float, stream_read_timeout: float
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"flagsvc URL must be http(s)://host[:port], not {url!r}")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.stream_read_timeout = stream_read_timeout
        self.headers = {"Authorization": f"Bearer {sdk_key}", "User-Agent": USER_AGENT}
        self._stream_lock = threading.Lock()
        self._stream_connection: http.client.HTTPConnection | None = None

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout, context=ssl.create_default_context()
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def fetch_snapshot(self, etag: str | None) -> SnapshotAnswer:
        """GET the snapshot; raises Unauthorized or TransportError."""
        headers = {**self.headers, "Accept-Encoding": "gzip", "Accept": "application/json"}
        if etag:
            headers["If-None-Match"] = etag
        connection = self._connection(self.timeout)
        try:
            connection.request("GET", self.prefix + SNAPSHOT_PATH, headers=headers)
            response = connection.getresponse()
            body = response.read()
            status = response.status
            new_etag = response.getheader("ETag")
            encoding = (response.getheader("Content-Encoding") or "").lower()
        except (OSError, http.client.HTTPException) as exc:
            raise TransportError(f"snapshot request failed: {exc!r}") from exc
        finally:
            connection.close()
        if status == 304:
            return SnapshotAnswer(None, new_etag or etag)
        if status in (401, 403):
            raise Unauthorized(status, _error_message(status, body))
        if status != 200:
            raise TransportError(f"snapshot answered HTTP {status}: {_error_message(status, body)}")
        if encoding == "gzip":
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError) as exc:
                raise TransportError(f"snapshot gzip body is corrupt: {exc}") from exc
        return SnapshotAnswer(body, new_etag)

    def stream(self, last_event_id: int | None) -> Iterator[StreamEvent]:
        """Open the SSE stream and yield its events until it ends; raises like fetch_snapshot.

        A silent connection (no event and no keep-alive for ``stream_read_timeout``) counts as
        dead and raises TransportError.
        """
        headers = {**self.headers, "Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        connection = self._connection(self.timeout)
        with self._stream_lock:
            self._stream_connection = connection
        try:
            try:
                connection.request("GET", self.prefix + STREAM_PATH, headers=headers)
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                raise TransportError(f"stream request failed: {exc!r}") from exc
            if response.status in (401, 403):
                raise Unauthorized(
                    response.status, _error_message(response.status, response.read())
                )
            if response.status != 200:
                body = response.read()
                raise TransportError(
                    f"stream answered HTTP {response.status}: {_error_message(response.status, body)}"
                )
            if connection.sock is not None:
                connection.sock.settimeout(self.stream_read_timeout)
            yield from _events(response)
        finally:
            with self._stream_lock:
                self._stream_connection = None
            connection.close()

    def interrupt_stream(self) -> None:
        """Unblock a thread reading the stream (used by close())."""
        with self._stream_lock:
            connection = self._stream_connection
        if connection is not None and connection.sock is not None:
            with contextlib.suppress(OSError):
                connection.sock.shutdown(socket.SHUT_RDWR)

    def forget_stream(self) -> None:
        """In a forked child: drop the parent's stream without touching its socket's state."""
        self._stream_lock = threading.Lock()
        self._stream_connection = None


def _events(response: http.client.HTTPResponse) -> Iterator[StreamEvent]:
    """Parse text/event-stream (the WHATWG rules the server's events need)."""
    event, event_id = "", None
    data: list[str] = []
    while True:
        try:
            raw = response.readline()
        except (OSError, http.client.HTTPException) as exc:
            raise TransportError(f"stream broke: {exc!r}") from exc
        if not raw:
            raise TransportError("the server closed the stream")
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield StreamEvent(event or "message", "\n".join(data), event_id)
            event, data = "", []
            continue
        if line.startswith(":"):
            yield StreamEvent("comment", "", None)  # a keep-alive: proof the stream is alive
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            event_id = value


def parse_json(data: str) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
