"""Production web launcher: N uvicorn processes on one port, balanced by the kernel (SO_REUSEPORT).

    python -m flagsvc.serve --host 0.0.0.0 --port 8000 --workers 2

``uvicorn --workers N`` shares one listening socket between its processes, and on a
busy machine the process that wakes first takes most new connections: long-lived
SDK connections (keep-alive polls, streams) can pile up on one process while another
idles. Here each process gets its own socket bound with SO_REUSEPORT, so the kernel
spreads connections evenly across them. A process that dies is started again;
SIGTERM or Ctrl-C stops them all (each gets uvicorn's graceful shutdown).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any


def reuse_port_socket(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def serve_child(
    fd: int, log_level: str, graceful: int, app: str = "flagsvc.asgi:application"
) -> int:
    """One worker: uvicorn on the inherited socket.

    The socket is rebuilt with its real family (``uvicorn --fd`` assumes a Unix socket,
    and asyncio then leaves TCP_NODELAY off, so a response written in two parts waits
    for a delayed ACK: 40 ms).
    """
    import uvicorn

    sock = socket.socket(fileno=fd)
    config = uvicorn.Config(
        app,
        access_log=False,
        # X-Forwarded-For is read by Django for TRUSTED_PROXIES only (ClientAddressMiddleware);
        # uvicorn's own handling would believe it from any local peer, unvalidated.
        proxy_headers=False,
        log_level=log_level,
        timeout_graceful_shutdown=graceful,
    )
    _stream_ending_server_class()(config).run(sockets=[sock])
    return 0


def _stream_ending_server_class() -> type:
    import asyncio

    import uvicorn

    class StreamEndingServer(uvicorn.Server):
        """uvicorn that, when asked to stop, first ends the SDK streams: a stream never ends
        by itself, so the graceful shutdown would otherwise wait its whole timeout, then
        cancel each stream with an error logged."""

        async def startup(self, sockets: Any = None) -> None:
            self.loop = asyncio.get_running_loop()
            await super().startup(sockets=sockets)

        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            loop = getattr(self, "loop", None)
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(_end_streams)

    return StreamEndingServer


def _end_streams() -> None:
    edge = sys.modules.get("flags.edge.app")  # loaded with flagsvc's application
    ended = edge.end_streams() if edge is not None else 0
    if ended:
        print(f"flagsvc: stopping; ended {ended} SDK stream(s)", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--backlog", type=int, default=2048)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--timeout-graceful-shutdown", type=int, default=5)
    parser.add_argument(
        "--app",
        default="flagsvc.asgi:application",
        help="the ASGI application (benchmarks serve a bare reference app the same way)",
    )
    parser.add_argument("--child-fd", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_fd is not None:
        return serve_child(args.child_fd, args.log_level, args.timeout_graceful_shutdown, args.app)

    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics_dir:  # a fresh set of processes: drop the previous run's metric files
        os.makedirs(metrics_dir, exist_ok=True)
        for name in os.listdir(metrics_dir):
            if name.endswith(".db"):
                os.remove(os.path.join(metrics_dir, name))
    sockets = [reuse_port_socket(args.host, args.port, args.backlog) for _ in range(args.workers)]

    def start(sock: socket.socket) -> subprocess.Popen[bytes]:
        command = [
            sys.executable,
            "-m",
            "flagsvc.serve",
            "--child-fd",
            str(sock.fileno()),
            "--log-level",
            args.log_level,
            "--timeout-graceful-shutdown",
            str(args.timeout_graceful_shutdown),
            "--app",
            args.app,
        ]
        return subprocess.Popen(command, pass_fds=(sock.fileno(),))

    processes = [start(sock) for sock in sockets]
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(
        f"flagsvc: {args.workers} uvicorn processes on http://{args.host}:{args.port} (SO_REUSEPORT)",
        flush=True,
    )
    while not stopping:
        time.sleep(0.5)
        for index, process in enumerate(processes):
            if process.poll() is not None and not stopping:
                print(
                    f"flagsvc: worker {process.pid} exited ({process.returncode}); starting another",
                    flush=True,
                )
                processes[index] = start(sockets[index])
    deadline = time.monotonic() + args.timeout_graceful_shutdown + 10
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
