"""The durable request→response ledger: never pay twice for the same answer (issue 5).

Every successful response is stored as soon as it arrives, keyed by a fingerprint of everything
that determines the answer; before calling, the client looks the fingerprint up, and a hit costs
nothing. A crashed or re-run partition therefore resumes where it stopped, and overlapping
backfills share answers.

    fingerprint = sha256(canonical JSON of params minus transport-only keys)

Canonical JSON: sorted keys, no spaces, UTF-8. Included: model, system, messages, tools,
tool_choice, output_config, max_tokens, temperature, top_p, top_k, stop_sequences, thinking and
any other parameter, since an unknown key may change the answer. Excluded (they cannot):
`metadata`, `stream`, `service_tier` and the SDK's `extra_*`/`timeout` options, and every
`cache_control` (top level, on a tool, a system block or a message block): a cache breakpoint
changes what a call costs, never its answer, so a request sent with a 1-hour breakpoint in a batch,
a 5-minute one in real time or none at all (a model whose minimum its prefix misses) is one entry;
a system prompt of one text block counts as that text.

Entries are stored under `<endpoint host>:<fingerprint>`: the endpoint determines the answer as
much as the prompt does, and a state directory shared by a simulator demo and real runs must
never serve a simulated answer as Claude's. (Simulators on different ports share `127.0.0.1`;
their answers are deterministic.)

Storage follows `settings.state`: memory, a WAL SQLite file `ledger.sqlite` in the state
directory, or Redis. `refresh=True` skips lookups for a run (after a prompt fix) but still
writes, so the next normal run sees the fresh answers.

Only answers that validate strictly as a `Message` are stored (the client never stores a body it
could not validate), and an entry that no longer validates when read (stored by an older version,
or damaged) counts as a miss: the request is answered again and the entry overwritten, instead
of every later run crashing on it. `delete` removes entries by step, model, key or fingerprint
(`llm-pipeline ledger delete`).

`keep` is the write after a paid answer: retried (the state may be restarting) and, when the
store stays down, spooled to a local file (`spool.py`) that the next run replays before calling,
then reported as a `StateStoreError` naming the store and the file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pydantic
from anthropic.types import Message

from llm_pipeline.claude.clock import Clock
from llm_pipeline.claude.errors import StateStoreError
from llm_pipeline.claude.spool import Spool
from llm_pipeline.claude.state.base import LedgerEntry, LedgerSelection, LedgerStats, LedgerStore
from llm_pipeline.claude.state_errors import map_state_errors
from llm_pipeline.claude.types import Request

__all__ = ["TRANSPORT_ONLY_PARAMS", "Ledger", "LedgerHit", "LedgerSelection", "LedgerStats", "fingerprint"]

TRANSPORT_ONLY_PARAMS = frozenset(
    {"metadata", "stream", "service_tier", "extra_headers", "extra_query", "extra_body", "timeout"}
)
#: Writes of a paid answer before it is spooled, and the first pause between them (doubling).
KEEP_ATTEMPTS = 3
KEEP_BACKOFF_S = 0.5


def _unmarked(value: Any) -> Any:
    """A copy of `value` (lists and mappings) without any `cache_control` keys."""
    if isinstance(value, list):
        return [_unmarked(item) for item in value]
    if isinstance(value, Mapping):
        return {k: _unmarked(v) for k, v in value.items() if k != "cache_control"}
    return value


def _answer_params(params: Mapping[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in params.items() if k not in TRANSPORT_ONLY_PARAMS and k != "cache_control"}
    for name in ("system", "tools", "messages"):
        if isinstance(kept.get(name), list):
            kept[name] = _unmarked(kept[name])
    system = kept.get("system")
    if isinstance(system, list) and len(system) == 1 and _plain_text(system[0]):
        kept["system"] = system[0]["text"]
    return kept


def _plain_text(block: Any) -> bool:
    return isinstance(block, Mapping) and dict(block).keys() == {"type", "text"} and block["type"] == "text"


def fingerprint(params: Mapping[str, Any]) -> str:
    """sha256 hex of the canonical JSON of the answer-determining parameters."""
    kept = _answer_params(params)
    canonical = json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class LedgerHit:
    """A stored answer: the model that gave it and when."""

    message: Message
    model: str
    key: str
    created_at: float


class Ledger:
    """Lookups before a call, writes right after a success."""

    __slots__ = ("_clock", "_location", "_spool", "_store", "invalid", "namespace", "refresh")

    def __init__(
        self,
        store: LedgerStore,
        *,
        clock: Clock,
        refresh: bool = False,
        namespace: str = "",
        spool: Spool | None = None,
        location: str = "",
    ) -> None:
        self._store = store
        self._clock = clock
        self.refresh = refresh
        self.namespace = namespace
        self._spool = spool
        self._location = location
        #: Entry keys found stored but no longer valid (the caller asks for them again).
        self.invalid: set[str] = set()

    def entry_key(self, request: Request) -> str:
        """Where `request`'s answer is stored: `<namespace>:<fingerprint>` (a caller needing it twice
        computes it once: the fingerprint serialises the whole request)."""
        digest = fingerprint(request.params)
        return f"{self.namespace}:{digest}" if self.namespace else digest

    async def get(
        self,
        request: Request,
        *,
        also_models: Sequence[str] = (),
        ignore_refresh: bool = False,
        entry_key: str | None = None,
    ) -> LedgerHit | None:
        """The stored answer for `request`, or for the same request sent to one of `also_models`.

        Asking for the fallback model too means a document the fallback once answered is not
        paid for again on the primary. `ignore_refresh` reads even in a refresh run: for answers
        this very run stored (batch mode), which are fresh by definition. `entry_key` is
        `self.entry_key(request)` when the caller has it.
        """
        if self.refresh and not ignore_refresh:
            return None
        keys = [entry_key or self.entry_key(request)]
        keys += [self.entry_key(request.with_model(m)) for m in also_models if m != request.model]
        entry = await self._store.get(keys)
        if entry is None:
            return None
        try:
            message = Message.model_validate_json(entry.message_json)
        except pydantic.ValidationError:
            self.invalid.add(entry.fingerprint)
            return None
        return LedgerHit(message=message, model=entry.model, key=entry.key, created_at=entry.created_at)

    async def put(
        self,
        request: Request,
        message: Message,
        *,
        entry_key: str | None = None,
        message_json: str | None = None,
    ) -> None:
        """Store the answer; returns once it is durable (committed), before the caller may use it.

        `message_json` is the response body when the caller has it (it parses to `message`), which
        spares serialising the message again.
        """
        await self.put_answer(
            entry_key or self.entry_key(request),
            key=request.key,
            model=request.model,
            message=message,
            message_json=message_json,
            step=request.tags.get("step", ""),
        )

    async def put_answer(
        self,
        entry_key: str,
        *,
        key: str,
        model: str,
        message: Message,
        message_json: str | None = None,
        step: str = "",
    ) -> None:
        """Store an answer under a known entry key: batch results arrive without their requests."""
        await self._store.put(self._entry(entry_key, key, model, message, message_json, step))

    def _entry(
        self, entry_key: str, key: str, model: str, message: Message, message_json: str | None, step: str
    ) -> LedgerEntry:
        return LedgerEntry(
            fingerprint=entry_key,
            key=key,
            model=model,
            message_json=message_json if message_json is not None else message.model_dump_json(),
            input_tokens=message.usage.input_tokens,
            output_tokens=message.usage.output_tokens,
            created_at=self._clock.wall(),
            step=step,
        )

    async def keep(
        self, request: Request, message: Message, *, entry_key: str, message_json: str | None
    ) -> None:
        """Store a paid answer, retrying; if the store stays down, spool it and raise `StateStoreError`."""
        entry = self._entry(
            entry_key, request.key, request.model, message, message_json, request.tags.get("step", "")
        )
        failure: StateStoreError | None = None
        for attempt in range(KEEP_ATTEMPTS):
            if attempt:
                await self._clock.sleep(KEEP_BACKOFF_S * 2 ** (attempt - 1))
            try:
                with map_state_errors(self._location):
                    await self._store.put(entry)
                return
            except StateStoreError as exc:
                if exc.lost:  # written, into a store that forgot everything else: nothing to spool
                    raise
                failure = exc
        assert failure is not None
        raise self._spooled(entry, failure) from failure

    def _spooled(self, entry: LedgerEntry, failure: StateStoreError) -> StateStoreError:
        """Put the answer into the local spool; the error to fail the step with."""
        if self._spool is None:
            return StateStoreError(
                f"{failure.message}. The answer to {entry.key!r} could not be stored and there is no "
                "spool directory: it is lost, and the next run pays for it again.",
                store=failure.store,
            )
        try:
            path = self._spool.add(entry)
        except OSError as exc:
            return StateStoreError(
                f"{failure.message}. The answer to {entry.key!r} could not be spooled either "
                f"({exc}): it is lost, and the next run pays for it again.",
                store=failure.store,
            )
        return StateStoreError(
            f"{failure.message}. Answers already paid for were saved to {path}; the next run puts "
            "them into the ledger before calling, so fix the store and re-run.",
            store=failure.store,
            spooled=str(path),
        )

    async def stats(self) -> LedgerStats:
        return await self._store.stats()

    async def delete(self, selection: LedgerSelection) -> int:
        """Delete the entries `selection` matches (by step, model, key or fingerprint); returns how many."""
        return await self._store.delete(selection)

    async def prune(self, older_than: timedelta) -> int:
        """Delete answers stored more than `older_than` ago; returns how many."""
        return await self._store.prune(self._clock.wall() - older_than.total_seconds())

    def __repr__(self) -> str:
        return f"<Ledger store={type(self._store).__name__} refresh={self.refresh}>"
