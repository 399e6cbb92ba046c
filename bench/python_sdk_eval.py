"""Evaluations per second of flagsvc's Python SDK beside UnleashClient, growthbook and the floor,
all measured in this one run, and the memory a 1,000-flag snapshot costs.

    python bench/python_sdk_eval.py [--n 100000] [--repeat 5] [--flags 1000]

Cases, each given to every SDK as the equivalent local definition (no network):
(a) a boolean with no rules; (b) a 50% rollout by user id; (c) a flag with 3 attribute rules
(country in a list; plan equals; app version >= 2.0.0 by semver), the contexts matching each
rule or none in turn. The floor is one dict lookup plus one ``mmh3.hash`` per evaluation.
Every SDK evaluates through its public call (``client.is_enabled`` / ``is_on``) with the
context of the evaluation: flagsvc and Unleash take it per call; growthbook holds attributes
per instance, so it gets one prepared instance per user (its most favourable setup).

Targets: on every case at least 2x growthbook's rate and 10x UnleashClient's; (b) within 10x
of the floor; a process holding a 1,000-flag snapshot at most 30 MB above one that only
imported the SDK.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mmh3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.eval_engine import flag as flagsvc_flag
from flagsvc_sdk import FlagsvcClient

USERS = 1_000  # distinct contexts, cycled
COUNTRIES = ["DE", "FR", "US", "BR"]
PLANS = ["free", "pro", "enterprise"]
VERSIONS = ["1.4.0", "2.0.0", "2.3.1", "1.9.9"]


FLAGSVC = {
    "plain-boolean": flagsvc_flag("plain-boolean"),
    "half-rollout": flagsvc_flag(
        "half-rollout",
        default_serve={
            "split": [{"variant": "on", "weight": 5000}, {"variant": "off", "weight": 5000}]
        },
    ),
    "three-rules": flagsvc_flag(
        "three-rules",
        default_serve={"variant": "off"},
        rules=[
            {
                "conditions": [{"attribute": "country", "operator": "in", "value": ["DE", "AT"]}],
                "serve": {"variant": "on"},
            },
            {
                "conditions": [{"attribute": "plan", "operator": "equals", "value": "enterprise"}],
                "serve": {"variant": "on"},
            },
            {
                "conditions": [
                    {"attribute": "app_version", "operator": "semver_gte", "value": "2.0.0"}
                ],
                "serve": {"variant": "on"},
            },
        ],
    ),
}

# Unleash: strategies are ORed, constraints within one ANDed; flexibleRollout buckets userId.
UNLEASH = {
    "version": 1,
    "features": [
        {
            "name": "plain-boolean",
            "enabled": True,
            "strategies": [{"name": "default", "parameters": {}}],
        },
        {
            "name": "half-rollout",
            "enabled": True,
            "strategies": [
                {
                    "name": "flexibleRollout",
                    "parameters": {"rollout": "50", "stickiness": "userId", "groupId": "half"},
                }
            ],
        },
        {
            "name": "three-rules",
            "enabled": True,
            "strategies": [
                {
                    "name": "default",
                    "parameters": {},
                    "constraints": [
                        {"contextName": "country", "operator": "IN", "values": ["DE", "AT"]}
                    ],
                },
                {
                    "name": "default",
                    "parameters": {},
                    "constraints": [
                        {"contextName": "plan", "operator": "IN", "values": ["enterprise"]}
                    ],
                },
                {
                    "name": "default",
                    "parameters": {},
                    "constraints": [
                        # Unleash has no SEMVER_GTE: "> 1.9.99" is ">= 2.0.0" for these versions
                        {"contextName": "appVersion", "operator": "SEMVER_GT", "value": "1.9.99"}
                    ],
                },
            ],
        },
    ],
}

# growthbook: rules are tried in order, a force rule with coverage is a percentage rollout.
GROWTHBOOK = {
    "plain-boolean": {"defaultValue": True},
    "half-rollout": {
        "defaultValue": False,
        "rules": [{"force": True, "coverage": 0.5, "hashAttribute": "id"}],
    },
    "three-rules": {
        "defaultValue": False,
        "rules": [
            {"condition": {"country": {"$in": ["DE", "AT"]}}, "force": True},
            {"condition": {"plan": "enterprise"}, "force": True},
            {"condition": {"app_version": {"$vgte": "2.0.0"}}, "force": True},
        ],
    },
}

CASES = [
    ("(a) boolean, no rules", "plain-boolean"),
    ("(b) 50% rollout by user id", "half-rollout"),
    ("(c) 3 attribute rules", "three-rules"),
]


def users() -> list[dict[str, str]]:
    rng = random.Random(7)
    return [
        {
            "id": f"user-{i}",
            "country": rng.choice(COUNTRIES),
            "plan": rng.choice(PLANS),
            "app_version": rng.choice(VERSIONS),
        }
        for i in range(USERS)
    ]


def best_rate(run: Callable[[], None], n: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return n / best


SDK = tuple[Callable[[str], Callable[[], None]], Any]  # (timed run per flag key, one answer)


def per_call_context(is_enabled: Callable[[str, Any], Any], contexts: list[Any]) -> SDK:
    """The timed loop for SDKs that take the context with each call (flagsvc, Unleash)."""

    def case(key: str) -> Callable[[], None]:
        def run() -> None:
            for context in contexts:
                is_enabled(key, context)

        return run

    return case, lambda key, i: is_enabled(key, contexts[i])


def ours(people: list[dict[str, str]], n: int) -> tuple[Callable[[str], Callable[[], None]], Any]:
    client = FlagsvcClient(
        None,
        None,
        offline=True,
        bootstrap={
            "schema_version": 1,
            "environment": "bench",
            "version": 1,
            "flags": FLAGSVC,
            "segments": {},
        },
    )
    contexts = [
        {
            "targetingKey": p["id"],
            "country": p["country"],
            "plan": p["plan"],
            "app_version": p["app_version"],
        }
        for p in people
    ] * (n // USERS)
    return per_call_context(client.is_enabled, contexts)


def unleash(
    people: list[dict[str, str]], n: int
) -> tuple[Callable[[str], Callable[[], None]], Any]:
    from UnleashClient import UnleashClient
    from UnleashClient.cache import FileCache

    logging.getLogger("UnleashClient").setLevel(logging.ERROR)
    cache = FileCache("flagsvc-bench", directory=tempfile.mkdtemp(prefix="unleash-bench-"))
    cache.bootstrap_from_dict(UNLEASH)
    client = UnleashClient(
        "http://127.0.0.1:9/api",  # never contacted: no fetch, metrics or registration
        "flagsvc-bench",
        cache=cache,
        disable_metrics=True,
        disable_registration=True,
    )
    client.initialize_client(fetch_toggles=False)
    contexts = [
        {
            "userId": p["id"],
            "appVersion": p["app_version"],
            "properties": {"country": p["country"], "plan": p["plan"]},
        }
        for p in people
    ] * (n // USERS)
    return per_call_context(client.is_enabled, contexts)


def growthbook(
    people: list[dict[str, str]], n: int
) -> tuple[Callable[[str], Callable[[], None]], Any]:
    from growthbook import GrowthBook

    instances = [GrowthBook(attributes=dict(p), features=GROWTHBOOK) for p in people] * (n // USERS)

    def case(key: str) -> Callable[[], None]:
        def run() -> None:
            for instance in instances:
                instance.is_on(key)

        return run

    return case, lambda key, i: instances[i].is_on(key)


def floor(people: list[dict[str, str]], n: int) -> Callable[[], None]:
    table = dict(FLAGSVC)
    units = [p["id"] for p in people] * (n // USERS)
    murmur = mmh3.hash

    def run() -> None:
        for unit in units:
            table["half-rollout"]
            murmur("half-rollout" + unit, 0, False)

    return run


def check_equivalent(sdks: dict[str, Any], n: int) -> None:
    """The three SDKs must answer the same for every context (else the comparison is moot)."""
    for _, key in CASES:
        if key == "half-rollout":
            # Each SDK hashes its own way: compare the share of users, not each user.
            shares = {
                name: sum(bool(answer(key, i)) for i in range(USERS)) / USERS
                for name, answer in sdks.items()
            }
            assert all(0.45 <= s <= 0.55 for s in shares.values()), shares
            continue
        for i in range(USERS):
            answers = {name: bool(answer(key, i)) for name, answer in sdks.items()}
            assert len(set(answers.values())) == 1, (key, i, answers)


MEMORY_SCRIPT = """
import gc, json, sys
def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
from flagsvc_sdk import FlagsvcClient
import flagsvc_sdk.client, flagsvc_sdk.snapshot
gc.collect()
before = rss_kb()
if sys.argv[1] != "0":
    client = FlagsvcClient(None, None, offline=True, bootstrap=sys.argv[2])
    assert len(client.snapshot.engine.flags) == int(sys.argv[1])
    assert client.is_enabled("flag-0000", {"targetingKey": "u", "country": "DE"}) in (True, False)
gc.collect()
print(json.dumps({"before_kb": before, "after_kb": rss_kb()}))
"""


def snapshot_of(count: int) -> dict[str, Any]:
    """A realistic mix: a third plain, a third rollouts, a third with 3 rules and a target list."""
    flags = {}
    for i in range(count):
        key = f"flag-{i:04d}"
        if i % 3 == 0:
            flags[key] = flagsvc_flag(key)
        elif i % 3 == 1:
            flags[key] = flagsvc_flag(key, default_serve=FLAGSVC["half-rollout"]["default_serve"])
        else:
            flags[key] = flagsvc_flag(
                key,
                rules=FLAGSVC["three-rules"]["rules"],
                default_serve={"variant": "off"},
                targets=[{"variant": "on", "values": [f"user-{j}" for j in range(20)]}],
            )
    return {
        "schema_version": 1,
        "environment": "bench",
        "version": 1,
        "flags": flags,
        "segments": {},
    }


def memory(count: int) -> tuple[float, float]:
    """(MB above an interpreter that imported the SDK, snapshot file size in MB)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(snapshot_of(count), handle)
        path = handle.name
    size = Path(path).stat().st_size / 1e6
    script = [sys.executable, "-c", MEMORY_SCRIPT]
    runs = []
    for flags in ("0", str(count)):
        out = subprocess.run(
            [*script, flags, path],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        runs.append(json.loads(out))
    Path(path).unlink()
    baseline = runs[0]["after_kb"]
    loaded = runs[1]["after_kb"]
    return (loaded - baseline) / 1024, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=100_000, help="evaluations per timed run")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs; the best counts")
    parser.add_argument("--flags", type=int, default=1_000, help="flags in the memory snapshot")
    args = parser.parse_args()
    n = max(USERS, args.n // USERS * USERS)
    people = users()
    sdks = {"flagsvc": ours(people, n), "UnleashClient": unleash(people, n)}
    sdks["growthbook"] = growthbook(people, n)
    check_equivalent({name: answer for name, (_, answer) in sdks.items()}, n)
    floor_rate = best_rate(floor(people, n), n, args.repeat)
    rates: dict[str, dict[str, float]] = {}
    for name, (case, _) in sdks.items():
        rates[name] = {key: best_rate(case(key), n, args.repeat) for _, key in CASES}

    print(
        f"Python {sys.version.split()[0]}, {n:,} evaluations per timed run, best of "
        f"{args.repeat}; {USERS:,} distinct users cycled"
    )
    header = f"{'case':28} {'flagsvc/s':>12} {'Unleash/s':>12} {'growthbook/s':>13} "
    header += f"{'vs Unleash':>11} {'vs gb':>7} {'x floor':>8}"
    print(header)
    failures = []
    for label, key in CASES:
        mine, theirs_u, theirs_g = (
            rates[s][key] for s in ("flagsvc", "UnleashClient", "growthbook")
        )
        vs_unleash, vs_gb = mine / theirs_u, mine / theirs_g
        x_floor = floor_rate / mine
        print(
            f"{label:28} {mine:>12,.0f} {theirs_u:>12,.0f} {theirs_g:>13,.0f} "
            f"{vs_unleash:>10.1f}x {vs_gb:>6.1f}x {x_floor:>7.2f}x"
        )
        if vs_unleash < 10:
            failures.append(f"{label}: {vs_unleash:.1f}x UnleashClient (target 10x)")
        if vs_gb < 2:
            failures.append(f"{label}: {vs_gb:.1f}x growthbook (target 2x)")
        if key == "half-rollout" and x_floor > 10:
            failures.append(f"{label}: {x_floor:.1f}x the floor (target within 10x)")
    print(f"{'floor: dict + mmh3.hash':28} {floor_rate:>12,.0f}")
    extra_mb, size_mb = memory(args.flags)
    print(
        f"memory: {args.flags:,}-flag snapshot ({size_mb:.1f} MB of JSON) holds "
        f"{extra_mb:.1f} MB RSS above an interpreter that only imported the SDK (target <= 30 MB)"
    )
    if extra_mb > 30:
        failures.append(f"memory: {extra_mb:.1f} MB (target <= 30 MB)")
    print("targets: " + ("all MET" if not failures else "MISSED: " + "; ".join(failures)))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
