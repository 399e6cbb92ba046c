"""Evaluations per second of the pure engine, beside the floor measured in the same run.

    python bench/eval_engine.py [--n 200000] [--repeat 5]

Cases: (a) boolean, no rules; (b) 50% split by user id; (c) 5 rules of 3
conditions each (the context matches none, so every condition runs); (d) one
``matches`` condition (RE2, linear time) on a 20-character attribute; (e) the
floor: one dict lookup plus one mmh3.hash call. Target: (b) within 10x of (e).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from typing import Any

import mmh3

from flagsvc_sdk.engine import Engine

BOOL = {"on": True, "off": False}


def flag(key: str, **state: Any) -> dict[str, Any]:
    """A boolean flag as a snapshot carries it (every field), with ``state`` overriding."""
    return {
        "key": key,
        "type": "boolean",
        "variants": BOOL,
        "off_variant": "off",
        "enabled": True,
        "kill": None,
        "targets": [],
        "rules": [],
        "default_serve": {"variant": "on"},
        "prerequisites": [],
        **state,
    }


FLAGS = {
    "plain-boolean": flag("plain-boolean"),
    "half-rollout": flag(
        "half-rollout",
        default_serve={
            "split": [{"variant": "on", "weight": 5000}, {"variant": "off", "weight": 5000}]
        },
    ),
    "five-rules": flag(
        "five-rules",
        default_serve={"variant": "off"},
        rules=[
            {
                "id": f"r{i}",
                "conditions": [
                    {"attribute": "country", "operator": "in", "value": ["DE", "AT", "CH"]},
                    {"attribute": "plan", "operator": "equals", "value": f"tier-{i}"},
                    {"attribute": "app_version", "operator": "semver_gte", "value": "4.2.0"},
                ],
                "serve": {"variant": "on"},
            }
            for i in range(5)
        ],
    ),
    "one-regex": flag(
        "one-regex",
        default_serve={"variant": "off"},
        rules=[
            {
                "conditions": [
                    {"attribute": "email", "operator": "matches", "value": r"@(acme|example)\.com$"}
                ],
                "serve": {"variant": "on"},
            }
        ],
    ),
}


def best_rate(run: Callable[[], None], n: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n = args.n
    contexts = [
        {
            "targetingKey": f"user-{i}",
            "country": "DE",
            "plan": "free",
            "app_version": "4.1.0",
            "email": f"user-{i}@acme.com",
        }
        for i in range(n)
    ]
    engine = Engine(FLAGS)
    evaluate = engine.evaluate

    def case(key: str) -> Callable[[], None]:
        def run() -> None:
            for context in contexts:
                evaluate(key, context)

        return run

    table = {"half-rollout": FLAGS["half-rollout"]}
    units = [c["targetingKey"] for c in contexts]
    murmur = mmh3.hash

    def floor() -> None:
        for unit in units:
            table["half-rollout"]
            murmur("half-rollout" + unit, 0, False)

    rows = [
        ("(a) boolean, no rules", best_rate(case("plain-boolean"), n, args.repeat)),
        ("(b) 50% split by user id", best_rate(case("half-rollout"), n, args.repeat)),
        ("(c) 5 rules x 3 conditions", best_rate(case("five-rules"), n, args.repeat)),
        ("(d) 1 matches condition (regex)", best_rate(case("one-regex"), n, args.repeat)),
        ("(e) floor: dict lookup + mmh3.hash", best_rate(floor, n, args.repeat)),
    ]
    floor_rate = rows[-1][1]
    print(f"Python {sys.version.split()[0]}, {n:,} evaluations per run, best of {args.repeat}")
    print(f"{'case':38} {'evals/s':>14} {'ns/eval':>9} {'x floor':>8}")
    for name, rate in rows:
        print(f"{name:38} {rate:>14,.0f} {1e9 / rate:>9.0f} {floor_rate / rate:>8.2f}")
    ratio = floor_rate / rows[1][1]
    verdict = "MET" if ratio <= 10 else "MISSED"
    print(f"target: (b) within 10x of the floor -> {ratio:.2f}x: {verdict}")


if __name__ == "__main__":
    main()
