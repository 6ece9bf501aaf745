"""Ground truth from the server's side: what was asked, what was answered, what it cost.

The client's own metrics can lie (a lost response looks like a failure but was billed); these
counters cannot. The per-request success counter, keyed by `fingerprint(params)`, is what proves
"never pay twice": `duplicate_successes` must stay 0 for a pipeline with a working ledger.

A Messages request whose client went away after it was accepted, with its answer under way, is
`abandoned`; with `bill_abandoned` on it is also billed (`abandoned_billed`, and it counts in
`per_request` like a success), so a test can see a client pay again for what it walked away from.

`attempts`, `successes`, `status_counts`, in-flight and the success times cover billable
Messages calls (`POST /v1/messages`); `endpoints` counts statuses of every route; batch answers
count in `per_request` and the `batch_*` figures, not in the Messages figures.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["MAX_SUCCESS_TIMES", "Stats", "max_in_window"]

#: Success timestamps kept for `stats(times=True)` (the newest ones).
MAX_SUCCESS_TIMES = 200_000


def max_in_window(times: Sequence[float], window_s: float) -> int:
    """The largest number of `times` (sorted or not) within any half-open window of `window_s`."""
    ordered = sorted(times)
    best = 0
    start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


class Stats:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.started = clock()
        self.attempts = 0
        self.successes = 0
        self.status_counts: Counter[int] = Counter()
        self.endpoints: dict[str, Counter[int]] = {}
        self.faults: Counter[str] = Counter()
        self.limiter_429 = 0
        self.abandoned = 0
        self.abandoned_billed = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.tokens: Counter[str] = Counter()
        self.batch: Counter[str] = Counter()
        self.per_request: Counter[str] = Counter()
        self.success_times: deque[float] = deque(maxlen=MAX_SUCCESS_TIMES)
        #: When the rate limiter refused (a burst of them at the start of a run tells a test why).
        self.limiter_429_times: deque[float] = deque(maxlen=MAX_SUCCESS_TIMES)
        self.per_second: Counter[int] = Counter()

    def enter(self) -> None:
        self.attempts += 1
        self.in_flight += 1
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight

    def leave(self, status: int) -> None:
        """`status` 0 means the connection was dropped on purpose (no response at all)."""
        self.in_flight -= 1
        if status:
            self.status_counts[status] += 1

    def route(self, endpoint: str, status: int) -> None:
        counter = self.endpoints.get(endpoint)
        if counter is None:
            counter = self.endpoints[endpoint] = Counter()
        counter[status] += 1

    def refused(self) -> None:
        """The rate limiter turned a Messages request away (a 429 of our own, not an injected one)."""
        self.limiter_429 += 1
        self.limiter_429_times.append(self._clock() - self.started)

    def success(self, fingerprint: str, usage: dict[str, Any]) -> None:
        elapsed = self._clock() - self.started
        self.successes += 1
        self.per_request[fingerprint] += 1
        self.success_times.append(elapsed)
        self.per_second[int(elapsed)] += 1
        self._bill(usage, "")

    def abandon(self, fingerprint: str, usage: dict[str, Any], *, billed: bool) -> None:
        """The client left before its answer was delivered; `billed` charges it all the same."""
        self.abandoned += 1
        if billed:
            self.abandoned_billed += 1
            self.per_request[fingerprint] += 1
            self._bill(usage, "")

    def batch_result(self, kind: str, fingerprint: str | None, usage: dict[str, Any] | None) -> None:
        self.batch[f"requests_{kind}"] += 1
        if fingerprint is not None and usage is not None:
            self.per_request[fingerprint] += 1
            self._bill(usage, "batch_")

    def _bill(self, usage: dict[str, Any], prefix: str) -> None:
        for key in (
            "input_tokens",
            "output_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
        ):
            self.tokens[prefix + key] += usage.get(key) or 0
        creation = usage.get("cache_creation") or {}
        self.tokens[prefix + "cache_creation_1h_input_tokens"] += (
            creation.get("ephemeral_1h_input_tokens") or 0
        )
        self.tokens[prefix + "cache_writes"] += bool(usage.get("cache_creation_input_tokens"))
        self.tokens[prefix + "cache_reads"] += bool(usage.get("cache_read_input_tokens"))

    def snapshot(self, *, include_times: bool = False) -> dict[str, Any]:
        counts = self.per_request.values()
        repeated = [n for n in counts if n > 1]
        last_second = max(self.per_second, default=-1)
        snapshot: dict[str, Any] = {
            "uptime_s": self._clock() - self.started,
            "attempts": self.attempts,
            "successes": self.successes,
            "status_counts": {str(k): v for k, v in sorted(self.status_counts.items())},
            "endpoints": {e: {str(k): v for k, v in sorted(c.items())} for e, c in self.endpoints.items()},
            "limiter_429": self.limiter_429,
            "abandoned": self.abandoned,
            "abandoned_billed": self.abandoned_billed,
            "injected_429": self.faults["429"],
            "injected": dict(self.faults),
            "dropped": self.faults["drop"],
            "hung": self.faults["hang"],
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "input_tokens": self.tokens["input_tokens"],
            "output_tokens": self.tokens["output_tokens"],
            "cache_creation_input_tokens": self.tokens["cache_creation_input_tokens"],
            "cache_read_input_tokens": self.tokens["cache_read_input_tokens"],
            "cache_creation_1h_input_tokens": self.tokens["cache_creation_1h_input_tokens"],
            "cache_writes": self.tokens["cache_writes"],
            "cache_reads": self.tokens["cache_reads"],
            "batch": {"tokens": {k: v for k, v in self.tokens.items() if k.startswith("batch_")}}
            | dict(self.batch),
            "per_request": dict(self.per_request),
            "distinct_requests": len(self.per_request),
            "duplicate_successes": sum(n - 1 for n in repeated),
            "max_successes_per_request": max(counts, default=0),
            "successes_per_second": [self.per_second.get(s, 0) for s in range(last_second + 1)],
        }
        if include_times:
            snapshot["success_times"] = list(self.success_times)
            snapshot["limiter_429_times"] = list(self.limiter_429_times)
        return snapshot
