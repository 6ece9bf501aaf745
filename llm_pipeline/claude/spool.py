"""A local write-ahead file for paid answers the shared ledger could not take, and the shared store's
identity as this machine last saw it.

When the ledger write after a paid answer keeps failing (Redis down or frozen, SQLite locked past
the timeout, a read-only or full disk), the answer is appended to `answers-<pid>-<time>.jsonl` in
this spool's directory (one JSON `LedgerEntry` per line, flushed and fsynced) instead of being
dropped; the step then fails naming the store and the file. The next run with the same state
replays every spooled answer into the ledger before it makes any call, and deletes the file, so
those answers are never paid for twice.

The spool also remembers the marker a Redis store carried (`state/redis_store.py`): if this
machine saw marker X and the store now has another (or had none and got a fresh one), the store
lost its data, and `check_marker` refuses to run until a person accepts it (`accept_marker`,
`llm-pipeline ledger accept-reset`), since every answer in it would otherwise be paid again.

One spool directory per store: `<spool_dir>/<kind>-<hash of the redacted location>/`, with the
location written next to it for people (`location.txt`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path

from llm_pipeline.claude.errors import StateStoreError
from llm_pipeline.claude.state.base import LedgerEntry, LedgerStore

__all__ = ["Spool"]

_PATTERN = "answers-*.jsonl"


class Spool:
    """Spooled answers and the remembered marker of one state store, in a local directory."""

    __slots__ = ("directory", "location")

    def __init__(self, spool_dir: str | Path, location: str, kind: str) -> None:
        self.location = location
        digest = hashlib.sha256(location.encode()).hexdigest()[:16]
        self.directory = Path(spool_dir) / f"{kind}-{digest}"

    def add(self, entry: LedgerEntry) -> Path:
        """Append one answer durably; returns the file (OSError if the spool itself cannot be written)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "location.txt").write_text(self.location + "\n")
        path = self.directory / f"answers-{os.getpid()}-{int(time.time())}.jsonl"
        line = json.dumps(dataclasses.asdict(entry), ensure_ascii=False) + "\n"
        with path.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        return path

    def pending(self) -> list[Path]:
        return sorted(self.directory.glob(_PATTERN)) if self.directory.is_dir() else []

    async def replay(self, store: LedgerStore) -> int:
        """Put every spooled answer into the ledger, deleting each file once all of it is in."""
        replayed = 0
        for path in self.pending():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = LedgerEntry(**json.loads(line))
                except (ValueError, TypeError):
                    continue  # a line cut short by a crash mid-append: its answer never was whole
                await store.put(entry)
                replayed += 1
            path.unlink(missing_ok=True)
        return replayed

    @property
    def _marker_path(self) -> Path:
        return self.directory / "marker"

    def check_marker(self, marker: str | None) -> None:
        """Remember the store's marker; raise if it differs from the one this machine saw last."""
        if marker is None:
            return
        seen = self._marker_path.read_text().strip() if self._marker_path.is_file() else None
        if seen is None:
            self.accept_marker(marker)
            return
        if seen != marker:
            raise StateStoreError(
                f"the state store {self.location} lost its data since this machine last used it (its "
                f"marker changed from {seen} to {marker}: restarted without persistence, flushed or "
                "evicted). Every answer stored there is gone and re-running would pay for it again. "
                "Restore it from a backup, or accept paying again with `llm-pipeline ledger "
                f"accept-reset` (or delete {self._marker_path}).",
                store=self.location,
                lost=True,
            )

    def accept_marker(self, marker: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "location.txt").write_text(self.location + "\n")
        self._marker_path.write_text(marker + "\n")

    def forget_marker(self) -> bool:
        """Accept a store's loss of data: the next run records its new marker. True if one was known."""
        known = self._marker_path.is_file()
        self._marker_path.unlink(missing_ok=True)
        return known

    def __repr__(self) -> str:
        return f"<Spool {self.directory} pending={len(self.pending())}>"
