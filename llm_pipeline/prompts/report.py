"""Step 3: one report per partition — report math, a bounded prompt, the two-paragraph answer.

`CorpusStats` is fed one document at a time (streaming, so 100,000 documents are fine) and keeps
only counters and a small sample. What goes to the model (`prompt_payload`) is bounded whatever the
day's size: the label distribution and totals, the `top_n` topics and entities, and at most
`samples_per_label` example documents per label. Topic and entity counters are pruned to the
`max_tracked` most frequent keys whenever they grow past twice that, so memory stays bounded too;
the top counts are exact unless a key was rare when a pruning happened.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Annotated, Any

from anthropic.types import Message
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from llm_pipeline.claude.types import Request
from llm_pipeline.prompts.fencing import UNTRUSTED_NOTICE, fence
from llm_pipeline.prompts.structured import parse_structured, strict_json_schema, structured_request
from llm_pipeline.warehouse.tables import STATUSES

__all__ = [
    "SYSTEM_PROMPT",
    "CorpusStats",
    "Report",
    "Totals",
    "build_request",
    "category_distribution",
    "parse",
    "to_markdown",
]

Paragraph = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class Report(BaseModel):
    """The day in a headline and two paragraphs."""

    model_config = ConfigDict(extra="forbid")

    headline: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=150)]
    paragraphs: list[Paragraph] = Field(min_length=2, max_length=2, description="Exactly two paragraphs.")

    @property
    def summary(self) -> str:
        """The two paragraphs as one text, as stored in `corpus_report.summary`."""
        return "\n\n".join(self.paragraphs)


@dataclass(frozen=True, slots=True)
class Totals:
    """Documents by final status, and what the per-document calls cost."""

    documents: int = 0
    ok: int = 0
    error: int = 0
    rejected: int = 0
    skipped: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    #: Calls whose model had no price: `cost_usd` leaves them out.
    unpriced_calls: int = 0


def category_distribution(labels: Iterable[str | None], taxonomy: Sequence[str]) -> dict[str, int]:
    """Documents per label, every taxonomy label present (0 when unused), in taxonomy order."""
    counts = Counter(label for label in labels if label in taxonomy)
    return {label: counts[label] for label in taxonomy}


_STATUS_FIELDS = ("documents", *STATUSES)


class CorpusStats:
    """Streaming accumulator of what the report is written from."""

    def __init__(
        self,
        taxonomy: Sequence[str],
        *,
        top_n: int = 15,
        samples_per_label: int = 3,
        max_tracked: int = 10_000,
    ) -> None:
        self.taxonomy = tuple(taxonomy)
        self.top_n = top_n
        self.samples_per_label = samples_per_label
        self.max_tracked = max_tracked
        self._statuses: Counter[str] = Counter()
        self._labels: Counter[str] = Counter()
        self._topics: Counter[str] = Counter()
        self._entities: Counter[tuple[str, str]] = Counter()
        self._samples: dict[str, list[dict[str, Any]]] = {label: [] for label in self.taxonomy}
        self._usage = {"input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "unpriced_calls": 0}

    def add_document(
        self,
        status: str,
        *,
        label: str | None = None,
        confidence: float | None = None,
        rationale: str | None = None,
        topics: Iterable[str] = (),
        entities: Iterable[Mapping[str, str]] = (),
    ) -> None:
        """Count one document by its final status; an `ok` one adds its label, topics and entities."""
        self._statuses[status] += 1
        if status != "ok":
            return
        topic_list = list(dict.fromkeys(t.strip().lower() for t in topics if t.strip()))
        self._topics.update(topic_list)
        self._entities.update({(e["name"].strip(), e["type"]) for e in entities if e["name"].strip()})
        _prune(self._topics, self.max_tracked)
        _prune(self._entities, self.max_tracked)
        if label in self._samples:
            self._labels[label] += 1
            if len(self._samples[label]) < self.samples_per_label:
                self._samples[label].append(
                    {
                        "label": label,
                        "confidence": confidence,
                        "topics": topic_list[:3],
                        "why": (rationale or "")[:200],
                    }
                )

    def add_usage(self, row: Mapping[str, Any]) -> None:
        """Add the tokens and cost of one LLM table row (any step) to the totals."""
        self._usage["input_tokens"] += int(row.get("input_tokens") or 0)
        self._usage["output_tokens"] += int(row.get("output_tokens") or 0)
        if row.get("cost_usd") is not None:
            self._usage["cost_usd"] += float(row["cost_usd"])
        elif row.get("attempts"):
            self._usage["unpriced_calls"] += 1

    @property
    def distribution(self) -> dict[str, int]:
        return category_distribution(self._labels.elements(), self.taxonomy)

    @property
    def totals(self) -> Totals:
        counts = {status: self._statuses[status] for status in STATUSES}
        return Totals(
            documents=sum(self._statuses.values()),
            **counts,
            input_tokens=int(self._usage["input_tokens"]),
            output_tokens=int(self._usage["output_tokens"]),
            cost_usd=round(float(self._usage["cost_usd"]), 9),
            unpriced_calls=int(self._usage["unpriced_calls"]),
        )

    def prompt_payload(self) -> dict[str, Any]:
        """The bounded, JSON-ready summary the report call is written from."""
        totals, distribution = self.totals, self.distribution
        classified = sum(distribution.values())
        return {
            "documents": {k: v for k, v in asdict(totals).items() if k in _STATUS_FIELDS},
            "distribution": {
                label: {"documents": n, "share": round(n / classified, 3) if classified else 0.0}
                for label, n in distribution.items()
            },
            "top_topics": [[topic, n] for topic, n in _most_common(self._topics, self.top_n)],
            "top_entities": [
                {"name": name, "type": kind, "documents": n}
                for (name, kind), n in _most_common(self._entities, self.top_n)
            ],
            "samples": [sample for label in self.taxonomy for sample in self._samples[label]],
        }


def _most_common(counter: Counter[Any], n: int) -> list[tuple[Any, int]]:
    """The `n` most frequent keys, ties broken by the key itself.

    `Counter.most_common` breaks ties by insertion order, which follows row order and set iteration
    (hash-seeded, so it differs per process); the report request must not, or the ledger would not
    recognise a re-run's report and it would be paid for again.
    """
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:n]


def _prune(counter: Counter[Any], keep: int) -> None:
    if len(counter) > 2 * keep:
        survivors = _most_common(counter, keep)
        counter.clear()
        counter.update(dict(survivors))


SYSTEM_PROMPT = (
    "You write the daily report of a document pipeline from its statistics: a headline (at most 150 "
    "characters) and exactly two paragraphs. The first says what the day's documents were about: the "
    "label distribution, the main topics and entities. The second covers notable patterns and data "
    "quality (errors, rejected and skipped documents). Use only numbers that appear in the statistics. "
    + UNTRUSTED_NOTICE
)


def build_request(partition_key: str, stats: CorpusStats, *, model: str, max_tokens: int) -> Request:
    """The single report call of a partition, keyed `report-<partition>`."""
    payload = json.dumps(stats.prompt_payload(), ensure_ascii=False)
    return structured_request(
        f"report-{partition_key}",
        f"Write the report for {partition_key}.\n\n" + fence("corpus_stats", payload, date=partition_key),
        system=SYSTEM_PROMPT,
        schema=strict_json_schema(Report),
        model=model,
        max_tokens=max_tokens,
        step="report",
    )


def parse(message: Message) -> Report:
    """The validated report, or `BadOutput` naming what was wrong."""
    return parse_structured(message, Report)


def to_markdown(report: Report | None, distribution: Mapping[str, int], totals: Totals) -> str:
    """The report, the distribution and the totals as markdown for the asset's metadata."""
    classified = sum(distribution.values())
    lines = [f"## {report.headline}", "", *(p + "\n" for p in report.paragraphs)] if report else []
    lines += ["| label | documents | share |", "|---|---:|---:|"]
    lines += [
        f"| {label} | {n} | {n / classified:.1%} |" if classified else f"| {label} | {n} | – |"
        for label, n in distribution.items()
    ]
    lines += [
        "",
        "| documents | ok | error | rejected | skipped | input tokens | output tokens | cost (USD) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {totals.documents} | {totals.ok} | {totals.error} | {totals.rejected} | {totals.skipped} "
        f"| {totals.input_tokens} | {totals.output_tokens} | {totals.cost_usd:.4f} |",
    ]
    return "\n".join(lines)
