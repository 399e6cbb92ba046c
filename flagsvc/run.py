"""`make run`'s supervisor: prepares a development stack, then runs the ASGI server and a
Celery worker with beat, stopped together on Ctrl-C.

python -m flagsvc.run [--host 127.0.0.1] [--port 8000]

Before starting them it writes the development settings to var/dev.env (which
flagsvc/settings.py reads, so manage.py works in any terminal), migrates, collects
static files, seeds the demo data and keeps development keys in var/dev-keys.env,
saying what it does at each step.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The settings `make run` hands to a second terminal, when they are set here.
SHARED_SETTINGS = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_TASK_DEFAULT_QUEUE")


def write_env_file(path: Path) -> None:
    lines = [
        "# Written by `make run` (flagsvc/run.py) on every start: its development settings,",
        "# read by flagsvc/settings.py so `.venv/bin/python manage.py ...` works in any terminal.",
        "# Variables set in the environment win over these. Never use this file in production.",
        "DEBUG=true",
        *(f"{name}={os.environ[name]}" for name in SHARED_SETTINGS if os.environ.get(name)),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def say(message: str) -> None:
    print(f"[run] {message}", flush=True)


def prepare(var_dir: Path, base_url: str) -> None:
    """Settings file, database, static files, demo data and keys: one line per step."""
    env_file = Path(os.environ.get("FLAGSVC_ENV_FILE") or var_dir / "dev.env")
    say(f"writing the development settings to {env_file} (manage.py reads them)")
    write_env_file(env_file)
    where = os.environ.get("DATABASE_URL", "").split("@")[-1] or f"{var_dir}/flagsvc.sqlite3"
    steps = [
        (f"migrating the database ({where})", ["migrate", "--no-input", "--verbosity", "0"]),
        ("collecting static files", ["collectstatic", "--no-input", "--verbosity", "0"]),
        ("seeding the demo data (environments, flags, admin login)", ["seed_demo"]),
        (
            f"development keys (kept in {var_dir / 'dev-keys.env'})",
            ["dev_keys", "--url", base_url, "--file", str(var_dir / "dev-keys.env")],
        ),
    ]
    for message, command in steps:
        say(message)
        subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, check=True)


def _wait_until_up(url: str, processes: list[subprocess.Popen[bytes]], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            return False
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("FLAGSVC_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("FLAGSVC_PORT", "8000")))
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flagsvc.settings")
    var_dir = Path(os.environ.get("FLAGSVC_VAR_DIR", ROOT / "var"))
    var_dir.mkdir(parents=True, exist_ok=True)
    base = f"http://{args.host}:{args.port}"
    try:
        prepare(var_dir, base)
    except subprocess.CalledProcessError as error:
        say(f"`manage.py {error.cmd[2]}` failed (exit status {error.returncode}); see above")
        return 1
    python = sys.executable
    commands = {
        "web": [
            python,
            "-m",
            "uvicorn",
            "flagsvc.asgi:application",
            "--host",
            args.host,
            "--port",
            str(args.port),
            "--no-access-log",
            "--no-proxy-headers",  # TRUSTED_PROXIES decides, in Django (flagsvc/middleware.py)
            # Open SSE streams never finish on their own; give them 5 s, then close them.
            "--timeout-graceful-shutdown",
            "5",
        ],
        "worker": [
            python,
            "-m",
            "celery",
            "-A",
            "flagsvc",
            "worker",
            "--beat",
            "--loglevel=INFO",
            "--concurrency=1",
            f"--schedule={var_dir / 'celerybeat-schedule'}",
        ],
    }
    processes: list[subprocess.Popen[bytes]] = []
    for name, command in commands.items():
        print(f"[run] starting {name}: {' '.join(command[1:])}", flush=True)
        # Own process group each, so Ctrl-C reaches them only through us, in order.
        processes.append(subprocess.Popen(command, cwd=ROOT, start_new_session=True))

    def stop(*_: object) -> None:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        if _wait_until_up(f"{base}/healthz", processes):
            password_file = var_dir / "admin-password.txt"
            password = (
                password_file.read_text().strip()
                if password_file.exists()
                else "(run manage.py seed_demo)"
            )
            keys_file = var_dir / "dev-keys.env"
            keys = "".join(
                f"[run]     {line.removeprefix('export ')}\n"
                for line in (keys_file.read_text().splitlines() if keys_file.exists() else [])
                if line.startswith("export FLAGSVC_") and "FLAGSVC_URL=" not in line
            )
            print(
                f"\n[run] flagsvc is up.\n"
                f"[run]   admin:  {base}/admin/   login: admin / {password}\n"
                f"[run]   health: {base}/healthz\n"
                f"[run]   development keys (production), also in {keys_file}:\n{keys}"
                f"[run]   in another terminal, from {ROOT}:\n"
                f"[run]     source {keys_file}   # FLAGSVC_URL and the keys, as docs/runbook.md uses them\n"
                f'[run]     .venv/bin/python manage.py kill new-checkout -e production -r "why"\n'
                f"[run] Ctrl-C stops the web server and the worker.\n",
                flush=True,
            )
        else:
            print("[run] the web server did not come up; see the output above", flush=True)
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        failed = [name for name, p in zip(commands, processes, strict=True) if p.poll() is not None]
        print(f"[run] {', '.join(failed)} exited; stopping the rest", flush=True)
        return 1
    except KeyboardInterrupt:
        print("\n[run] stopping…", flush=True)
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
