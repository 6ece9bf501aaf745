"""How many Messages requests per second the simulator serves at zero latency.

The simulator runs in its own process (`Simulator.spawn`) and the load comes from other
processes (raw aiohttp clients, not the SDK, whose own ceiling is lower: ARCHITECTURE §3), so the
figure is the server's serving overhead: parsing, validation, fingerprinting, the answer cache,
the counters. Target on the 2-core dev machine: >= 2,000 req/s.

    python benchmarks/simulator_throughput.py                      # default run, prints the figure
    python benchmarks/simulator_throughput.py --requests 2000 --distinct 2000   # no answer-cache hits

Not a test: nothing asserts the figure. The last line printed is a JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from llm_pipeline.simulator import Simulator, SimulatorConfig

MODEL = "claude-haiku-5-5"


def _payload(i: int) -> bytes:
    """A small but realistic request: a fenced document and a forced classification tool."""
    document = (
        f"Acme Robotics opened a plant in Lyon. Chief executive Jane Doe said the Model {i} arm "
        f"cuts assembly time by {i % 40 + 10} percent, and investors welcomed the revenue outlook."
    )
    params = {
        "model": MODEL,
        "max_tokens": 256,
        "messages": [
            {"role": "user", "content": f'Classify.\n<document id="d{i}">\n{document}\n</document>'}
        ],
        "tools": [
            {
                "name": "classify",
                "input_schema": {
                    "type": "object",
                    "properties": {
                        "label": {"type": "string", "enum": ["technical", "business", "research", "other"]},
                        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                        "rationale": {"type": "string"},
                    },
                    "required": ["label", "confidence", "rationale"],
                },
            }
        ],
        "tool_choice": {"type": "tool", "name": "classify"},
    }
    return json.dumps(params).encode()


async def _load(url: str, requests: int, concurrency: int, distinct: int, offset: int) -> dict[str, Any]:
    bodies = [_payload(offset + i) for i in range(min(distinct, requests))]
    headers = {
        "content-type": "application/json",
        "x-api-key": "sk-sim-bench",
        "anthropic-version": "2023-06-01",
    }
    statuses: dict[int, int] = {}
    next_index = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal next_index
        while next_index < requests:
            i = next_index
            next_index += 1
            async with session.post(
                url + "/v1/messages", data=bodies[i % len(bodies)], headers=headers
            ) as resp:
                await resp.read()
                statuses[resp.status] = statuses.get(resp.status, 0) + 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.time()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        end = time.time()
    return {"start": start, "end": end, "statuses": statuses}


def _run_workers(url: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    per_client = args.requests // args.clients
    distinct = max(1, args.distinct // args.clients)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                url,
                str(per_client),
                str(args.concurrency),
                str(distinct),
                str(n * distinct),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(args.clients)
    ]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def measure(args: argparse.Namespace) -> dict[str, Any]:
    with Simulator.spawn(SimulatorConfig()) as sim:
        _run_workers(sim.base_url, argparse.Namespace(**{**vars(args), "requests": args.warmup}))
        sim.control.reset()
        results = _run_workers(sim.base_url, args)
        stats = sim.control.stats()
    start = min(r["start"] for r in results)
    end = max(r["end"] for r in results)
    statuses: dict[str, int] = {}
    for r in results:
        for status, n in r["statuses"].items():
            statuses[status] = statuses.get(status, 0) + n
    total = sum(statuses.values())
    return {
        "requests": total,
        "seconds": round(end - start, 3),
        "requests_per_s": round(total / (end - start), 1),
        "statuses": statuses,
        "server_successes": stats["successes"],
        "server_max_in_flight": stats["max_in_flight"],
        "clients": args.clients,
        "concurrency_per_client": args.concurrency,
        "distinct_requests": stats["distinct_requests"],
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"]:
        url, requests, concurrency, distinct, offset = argv[1], *map(int, argv[2:6])
        print(json.dumps(asyncio.run(_load(url, requests, concurrency, distinct, offset))), flush=True)
        return {}
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20_000, help="measured requests in total")
    parser.add_argument("--warmup", type=int, default=2_000, help="requests before measuring")
    parser.add_argument("--clients", type=int, default=1, help="load-generator processes")
    parser.add_argument("--concurrency", type=int, default=64, help="connections per load generator")
    parser.add_argument(
        "--distinct", type=int, default=200, help="distinct requests (the rest hit the cache)"
    )
    args = parser.parse_args(argv)
    summary = measure(args)
    print(
        f"simulator throughput: {summary['requests_per_s']:,.0f} req/s "
        f"({summary['requests']} requests in {summary['seconds']} s, statuses {summary['statuses']})"
    )
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
