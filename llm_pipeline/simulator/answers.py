"""What the simulated model says: deterministic, schema-driven answers derived from the document.

One request always gets the same answer (cached by fingerprint in a bounded LRU, so the hot path
skips all of this). Three shapes, as the real API produces them:

- forced tool use (`tool_choice` `tool` or `any`): one `tool_use` block whose `input` fills the
  tool's `input_schema`, `stop_reason: "tool_use"`;
- JSON output (`output_config.format` `json_schema`): one text block holding the JSON;
- otherwise a short text summary of the document.

Answers respect `max_tokens`: a longer answer is cut (a tool answer loses its input) and ends
with `stop_reason: "max_tokens"`. The fault helpers at the bottom turn a correct answer into
the broken ones the pipeline must survive: refusal, schema violation, unparseable JSON.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from llm_pipeline.simulator.analysis import TextAnalysis, analyse, source_text
from llm_pipeline.simulator.labels import LabelChoice, choose_label, entity_type
from llm_pipeline.simulator.schemas import SchemaFiller, Slot, resolve, wrong_value
from llm_pipeline.simulator.tokens import CHARS_PER_TOKEN, estimate_output_tokens

__all__ = ["Answer", "AnswerCache", "bad_json", "generate", "malformed", "refusal"]

_ENTITY_KEYS = frozenset({"entities", "entity", "named_entities", "people", "organizations", "mentions"})
_NAME_KEYS = frozenset({"name", "text", "entity", "value", "mention", "surface"})
_ENTITY_TYPES = ("person", "organization", "location", "product", "technology", "event", "other")
_TOPIC_KEYS = frozenset({"topics", "topic", "keywords", "tags", "terms", "themes", "key_terms"})
_PARAGRAPH_KEYS = frozenset({"paragraphs", "paragraph", "body", "sections"})
_SENTENCE_KEYS = frozenset({"sentences", "highlights", "key_points", "points", "bullets", "findings"})
_SUMMARY_KEYS = frozenset({"summary", "abstract", "description", "overview", "gist", "text", "content"})
_REASON_KEYS = frozenset({"rationale", "reason", "reasoning", "explanation", "justification"})
_SCORE_KEYS = frozenset({"confidence", "score", "probability", "certainty", "relevance"})
_FORMATS = {
    "date-time": "2026-11-20T00:00:00Z",
    "date": "2026-11-20",
    "time": "00:00:00Z",
    "email": "someone@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


@dataclass(frozen=True, slots=True)
class Answer:
    """Generated content without ids (those are fresh per response)."""

    content: tuple[Mapping[str, Any], ...]
    stop_reason: str
    output_tokens: int
    mode: str = "text"
    structured: Any = None
    schema: Mapping[str, Any] | None = None
    stop_details: Mapping[str, Any] | None = None
    stop_sequence: str | None = None


#: Longest sentence a generated paragraph quotes; keeps paragraphs paragraph-sized.
_SENTENCE_CHARS = 400


def _clip(sentence: str, limit: int) -> str:
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "…"


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


class _DocumentProvider:
    """Content for `SchemaFiller` slots, taken from one analysed document."""

    def __init__(self, analysis: TextAnalysis, *, gullible: bool) -> None:
        self._a = analysis
        self._injected = analysis.injected_word if gullible else None
        self._label: LabelChoice | None = None

    def _names(self) -> list[str]:
        return [p.text for p in self._a.phrases] or [t.capitalize() for t in self._a.topics]

    def array_length(self, slot: Slot, item_schema: Mapping[str, Any]) -> int:
        key = slot.key.lower()
        if key in _ENTITY_KEYS or "name" in (item_schema.get("properties") or {}):
            return min(len(self._a.phrases), 8)
        if key in _TOPIC_KEYS:
            return min(len(self._a.topics), 6)
        if key in _PARAGRAPH_KEYS:
            return 2
        if key in _SENTENCE_KEYS:
            return min(len(self._a.sentences), 3)
        return min(len(self._a.topics), 3)

    def string(self, slot: Slot, schema: Mapping[str, Any]) -> str:
        key, parent, i = slot.key.lower(), slot.parent.lower(), slot.index
        fmt = schema.get("format")
        if fmt in _FORMATS:
            return _FORMATS[fmt]
        if (parent in _ENTITY_KEYS and key in _NAME_KEYS) or key in _ENTITY_KEYS:
            names = self._names()
            return names[i % len(names)] if names else "Unknown"
        if parent in _ENTITY_KEYS and key in ("type", "category", "kind") and self._a.phrases:
            return str(entity_type(self._a.phrases[i % len(self._a.phrases)], _ENTITY_TYPES))
        if key in _TOPIC_KEYS:
            topics = self._a.topics or ("general",)
            return topics[i % len(topics)]
        if key in _PARAGRAPH_KEYS:
            return self.paragraph(i)
        if key in ("headline", "title", "heading"):
            return self.headline()
        if key in _REASON_KEYS:
            return self.rationale()
        if key in ("doc_id", "document_id", "id") and self._a.doc_id:
            return self._a.doc_id
        if key in _SENTENCE_KEYS:
            sentences = self._a.sentences or (self.summary(),)
            return sentences[i % len(sentences)]
        if key in _SUMMARY_KEYS:
            return self.summary()
        if key in ("name", "label", "category"):
            names = self._names()
            return names[i % len(names)] if names else "general"
        topics = self._a.topics or ("general",)
        return topics[i % len(topics)]

    def enum(self, slot: Slot, values: Sequence[Any]) -> Any:
        if self._injected is not None:
            word, self._injected = self._injected, None
            return word
        if slot.parent.lower() in _ENTITY_KEYS and self._a.phrases:
            return entity_type(self._a.phrases[slot.index % len(self._a.phrases)], values)
        choice = choose_label(values, self._a.counts)
        if self._label is None:
            self._label = choice
        return choice.value

    def number(self, slot: Slot, low: float | None, high: float | None, integer: bool) -> float:
        key = slot.key.lower()
        if key in _SCORE_KEYS:
            score = self._label.confidence if self._label else 0.8
            if high is not None and high > 1:
                score *= high
            return score
        if low is not None and high is not None:
            return (low + high) / 2
        if "count" in key or key.startswith(("n_", "num")):
            return len(self._a.phrases)
        return len(self._a.topics)

    def boolean(self, slot: Slot) -> bool:
        return bool(self._a.phrases) if "entit" in slot.key.lower() else False

    def summary(self) -> str:
        ordered = sorted(self._a.sentences[:2], key=self._a.text.find)
        if ordered:
            return " ".join(ordered)[:600]
        if self._a.topics:
            return f"The text is about {_join(self._a.topics[:3])}."
        return "The text is empty."

    def headline(self) -> str:
        names = self._names()[:3]
        return f"{_join(names)} in focus" if names else "Nothing to report"

    def paragraph(self, index: int) -> str:
        """A lead sentence and two salient ones; long sentences are cut, as a summary would."""
        sentences = self._a.sentences
        lead = [
            f"The material centres on {_join(self._a.topics[:4]) or 'no particular topic'}.",
            f"Frequently named: {_join(self._names()[:4]) or 'nobody in particular'}.",
        ][index % 2]
        tail = " ".join(_clip(s, _SENTENCE_CHARS) for s in sentences[2 * index : 2 * index + 2])
        return f"{lead} {tail}".strip()

    def rationale(self) -> str:
        if self._label is not None and self._label.evidence:
            return f"Mentions {_join(self._label.evidence)}, pointing to {self._label.value}."
        if self._label is not None:
            return f"No strong cues; {self._label.value} fits best."
        return self.summary()


def _tool_for(params: Mapping[str, Any]) -> Mapping[str, Any] | None:
    choice = params.get("tool_choice") or {}
    tools = [t for t in params.get("tools") or () if "input_schema" in t]
    if choice.get("type") == "tool":
        return next((t for t in tools if t.get("name") == choice.get("name")), None)
    if choice.get("type") == "any" and tools:
        return tools[0]
    return None


def _output_schema(params: Mapping[str, Any]) -> Mapping[str, Any] | None:
    config = params.get("output_config") or {}
    fmt = config.get("format") or params.get("output_format") or {}
    return fmt.get("schema") if fmt.get("type") == "json_schema" else None


def generate(params: Mapping[str, Any], *, gullible: bool = True) -> Answer:
    """The answer to a validated Messages request (pure: same params, same answer)."""
    text, doc_id = source_text(params)
    provider = _DocumentProvider(analyse(text, doc_id), gullible=gullible)
    max_tokens = int(params["max_tokens"])
    tool = _tool_for(params)
    if tool is not None:
        schema = tool["input_schema"]
        instance = SchemaFiller(schema, provider).fill()
        block = {"type": "tool_use", "name": tool["name"], "input": instance}
        tokens = estimate_output_tokens([block])
        if tokens > max_tokens:
            return Answer(({**block, "input": {}},), "max_tokens", max_tokens, "tool", {}, schema)
        return Answer((block,), "tool_use", tokens, "tool", instance, schema)
    schema = _output_schema(params)
    if schema is not None:
        instance = SchemaFiller(schema, provider).fill()
        body = json.dumps(instance, ensure_ascii=False)
        return _text_answer(body, params, "json", instance, schema)
    return _text_answer(provider.summary(), params, "text", None, None)


def _text_answer(
    text: str, params: Mapping[str, Any], mode: str, instance: Any, schema: Mapping[str, Any] | None
) -> Answer:
    max_tokens = int(params["max_tokens"])
    hits = [(text.find(s), s) for s in params.get("stop_sequences") or () if s and s in text]
    if hits:
        at, sequence = min(hits)
        block = {"type": "text", "text": text[:at]}
        return Answer(
            (block,), "stop_sequence", estimate_output_tokens([block]), mode, None, schema, None, sequence
        )
    block = {"type": "text", "text": text}
    tokens = estimate_output_tokens([block])
    if tokens <= max_tokens:
        return Answer((block,), "end_turn", tokens, mode, instance, schema)
    cut = {"type": "text", "text": text[: max_tokens * CHARS_PER_TOKEN]}
    return Answer((cut,), "max_tokens", max_tokens, mode, None, schema)


_REFUSAL_TEXT = "I can't help with that request."


def refusal(answer: Answer) -> Answer:
    block = {"type": "text", "text": _REFUSAL_TEXT}
    details = {"type": "refusal", "category": None, "explanation": None}
    return Answer((block,), "refusal", estimate_output_tokens([block]), answer.mode, None, None, details)


def malformed(answer: Answer) -> Answer:
    """The same answer with one property of the wrong type: it parses, but breaks the schema."""
    if answer.mode == "text" or not isinstance(answer.structured, dict) or answer.schema is None:
        return answer
    broken = dict(answer.structured)
    required = [r for r in resolve(answer.schema, answer.schema).get("required") or () if r in broken]
    victim = required[0] if required else next(iter(broken), None)
    if victim is None:
        broken = {"unexpected": "n/a"}
    else:
        broken[victim] = wrong_value(broken[victim])
    if answer.mode == "tool":
        block = {**answer.content[0], "input": broken}
    else:
        block = {"type": "text", "text": json.dumps(broken, ensure_ascii=False)}
    return replace(answer, content=(block,), structured=broken)


def bad_json(answer: Answer) -> Answer:
    """JSON text that does not parse (a tool's input cannot be unparseable, so it breaks the schema)."""
    if answer.mode == "tool":
        return malformed(answer)
    if answer.mode != "json":
        return answer
    text = str(answer.content[0]["text"])
    block = {"type": "text", "text": "Here is the JSON you asked for:\n" + text[: max(1, len(text) // 2)]}
    return replace(answer, content=(block,), structured=None)


class AnswerCache:
    """A bounded LRU of answers keyed by request fingerprint (and the gullibility switch)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, bool], Answer] = OrderedDict()

    def get(self, key: tuple[str, bool], make: Callable[[], Answer]) -> Answer:
        answer = self._items.get(key)
        if answer is not None:
            self._items.move_to_end(key)
            return answer
        answer = make()
        if self._size > 0:
            self._items[key] = answer
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        return answer

    def __len__(self) -> int:
        return len(self._items)
