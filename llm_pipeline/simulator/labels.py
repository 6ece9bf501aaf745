"""Choosing enum values the way a plausible (if simple) model would.

Two heuristics, both deterministic:

- `entity_type`: a capitalised phrase gets a category from cue words inside it ("Bank",
  "University", "Summit"), around it ("Dr.", "in", "said") and a small gazetteer, then the
  category is mapped onto whatever spelling the schema's enum uses ("organisation", "ORG", ...),
  falling back to "other" (or the enum's last value).
- `choose_label`: each enum value scores the overlap between the text's words and the value's
  own words plus a built-in keyword list for common labels; the best wins, ties go to the
  earlier value, and no overlap at all falls back to the last value (by convention "other").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llm_pipeline.simulator.analysis import Phrase, word_set

__all__ = ["LabelChoice", "choose_label", "entity_type", "match_enum"]


_TYPE_CUES: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "event",
        word_set(
            "conference summit festival olympics games war election elections cup expo fair "
            "championship forum symposium workshop hackathon crisis summit congress week"
        ),
    ),
    (
        "organization",
        word_set(
            "inc inc. corp corporation ltd llc gmbh ag plc sa company co group bank university "
            "institute agency ministry commission council foundation association federation "
            "committee department labs lab systems technologies partners capital holdings "
            "fund union authority board court parliament senate party reserve motors airlines "
            "microsoft google apple amazon nvidia meta openai anthropic ibm intel samsung "
            "tesla netflix alphabet oracle sap siemens toyota"
        ),
    ),
    (
        "location",
        word_set(
            "city county river mountain mount lake sea ocean island islands valley street avenue "
            "road province state republic kingdom bay coast region berlin london paris tokyo "
            "beijing shanghai delhi mumbai moscow madrid rome oslo stockholm vienna zurich geneva "
            "brussels amsterdam dublin washington california texas york francisco jose seattle "
            "boston chicago europe asia africa america china germany france japan india brazil "
            "canada mexico italy spain norway sweden russia ukraine uk usa australia korea "
            "taiwan singapore israel egypt nigeria kenya"
        ),
    ),
    (
        "technology",
        word_set(
            "ai api gpu gpus cpu llm llms python rust java javascript kubernetes linux blockchain "
            "quantum 5g cloud database sql tensorflow pytorch transformer transformers "
            "protocol http tcp lidar crispr mrna bluetooth wifi ethernet docker git gpt "
            "risc-v arm cuda webassembly"
        ),
    ),
    (
        "product",
        word_set(
            "pro max mini plus ultra edition app phone iphone ipad pixel galaxy model console "
            "watch studio office windows"
        ),
    ),
)
_PERSON_BEFORE = word_set(
    "mr mrs ms dr prof professor president ceo cfo cto minister chancellor senator "
    "sir judge founder chair chairman chairwoman director governor mayor by"
)
_PERSON_AFTER = word_set("said says told argued wrote added explained noted warned stated")
_LOCATION_BEFORE = word_set("in at from near across to into")
_SYNONYMS: Mapping[str, tuple[str, ...]] = {
    "organization": ("organization", "organisation", "org", "company", "institution"),
    "location": ("location", "place", "gpe", "loc", "country", "city"),
    "person": ("person", "people", "per", "human"),
    "technology": ("technology", "tech"),
    "product": ("product",),
    "event": ("event",),
    "other": ("other", "misc", "miscellaneous", "unknown"),
}


def _category(phrase: Phrase) -> str:
    parts = [w.lower().strip(".") for w in phrase.text.split()]
    tokens = set(parts)
    for category, cues in _TYPE_CUES:
        if tokens & cues:
            return category
    if phrase.before in _PERSON_BEFORE or phrase.after in _PERSON_AFTER:
        return "person"
    if any(any(c.isdigit() for c in p) for p in parts):
        return "product"
    if len(parts) == 1 and phrase.text.isupper() and len(phrase.text) >= 2:
        return "organization"
    if phrase.before in _LOCATION_BEFORE and len(parts) <= 2:
        return "location"
    if 2 <= len(parts) <= 3 and all(p[:1].isalpha() for p in parts):
        return "person"
    return "other"


def match_enum(category: str, values: Sequence[Any]) -> Any:
    """`values`' spelling of `category`, else its "other", else its last value."""
    lowered = {str(v).lower(): v for v in values}
    for name in (category, "other"):
        for synonym in _SYNONYMS.get(name, (name,)):
            if synonym in lowered:
                return lowered[synonym]
    return values[-1]


def entity_type(phrase: Phrase, values: Sequence[Any]) -> Any:
    return match_enum(_category(phrase), values)


_LABEL_KEYWORDS: Mapping[str, frozenset[str]] = {
    "technical": word_set(
        "software code api system systems server database algorithm bug deploy deployment "
        "kubernetes python performance latency architecture engineering protocol compiler "
        "gpu hardware network security infrastructure cloud release version framework "
        "library open-source programming developer developers chip chips cpu linux "
        "benchmark memory encryption"
    ),
    "business": word_set(
        "revenue market markets sales profit profits customer customers company companies "
        "investors investment quarter earnings ceo acquisition merger startup funding price "
        "prices growth strategy shares stock billion million economy trade deal partnership "
        "retail finance financial analysts valuation ipo"
    ),
    "research": word_set(
        "study studies research researchers paper experiment experiments results scientists "
        "hypothesis analysis published journal findings trial trials laboratory peer dataset "
        "theory evidence survey professor phd method methods university"
    ),
    "politics": word_set("government election minister parliament policy law senate vote president party"),
    "sports": word_set("match team league season coach goal player players tournament championship"),
    "health": word_set("patients hospital disease treatment vaccine clinical health doctors medicine"),
    "positive": word_set("good great excellent growth success improved gains love best"),
    "negative": word_set("bad poor decline loss losses failure worse worst crisis problem"),
}


@dataclass(frozen=True, slots=True)
class LabelChoice:
    value: Any
    confidence: float
    evidence: tuple[str, ...]


def choose_label(values: Sequence[Any], counts: Mapping[str, int]) -> LabelChoice:
    """The enum value whose keywords overlap the text most; see the module docstring."""
    scored = []
    for index, value in enumerate(values):
        name = str(value).lower()
        keywords = _LABEL_KEYWORDS.get(name, frozenset()) | frozenset(name.replace("_", " ").split())
        hits = sorted((w for w in keywords if w in counts), key=lambda w: (-counts[w], w))
        scored.append((sum(counts[w] for w in hits), -index, value, tuple(hits[:3])))
    scored.sort(reverse=True, key=lambda s: (s[0], s[1]))
    best_score, _, best, evidence = scored[0]
    if best_score == 0:
        return LabelChoice(values[-1], 0.35, ())
    runner_up = scored[1][0] if len(scored) > 1 else 0
    confidence = round(min(0.97, 0.55 + 0.42 * (best_score - runner_up) / best_score), 2)
    return LabelChoice(best, confidence, evidence)
