"""Cheap, deterministic reading of a document, so simulated answers say something about it.

No model, no corpus statistics: salient terms are the most frequent non-stopwords (any script,
non-ASCII kept), entities are runs of capitalised words (with the words around them kept as
cues for typing), and salient sentences are those richest in salient terms. Ties always break
by position, so the same text gives the same analysis on every machine.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Phrase", "TextAnalysis", "analyse", "source_text", "word_set"]


def word_set(text: str) -> frozenset[str]:
    """Word lists are written as one whitespace-separated string so that long ones stay readable."""
    return frozenset(text.split())


_STOPWORDS = word_set(
    """
    a about above after again against all also although am an and another any are as at be because been
    before being below between both but by can could did do does doing done down during each either else
    even ever every few for from further had has have having he her here hers herself him himself his how
    however i if in into is it its itself just least less let like made make many may me meanwhile might
    more most much must my myself near neither new no nor not now of off often on once one only or other
    our ours ourselves out over own per perhaps put rather said same says several shall she should since
    so some still such than that the their theirs them themselves then there therefore these they this
    those though through thus to today too under until up upon us very via was we were what when where
    whether which while who whom whose why will with within without would yes yesterday yet you your
    yours yourself according across already among around away back became become becomes get gets got
    just last like mr mrs ms next since two three first second third week year years month months day
    announced reported expects expected including using used based told plans new percent
    der die das und ist nicht mit von den dem des ein eine einer eines sich auf für als auch aus bei
    nach wie wird werden zu zum zur im am es er sie wir ihr sind war le la les un une des du de et est
    pour dans sur par pas au aux ce ces qui que il elle ils nous vous avec sont été el los las y en por
    para con una unos es del al lo se que su sus como más o il lo gli della di che e per con non sono
    het een en van is op te dat voor zijn met niet om ook
    """
)
#: Capitalised words that start sentences or name dates, not entities.
_NOT_NAMES = word_set(
    """
    analysts experts officials researchers scientists users customers people critics sources please note
    overall finally additionally furthermore moreover instead despite during later earlier recently
    currently ignore answer many most some several both each every nobody everyone here there
    monday tuesday wednesday thursday friday saturday sunday january february march april june july
    august september october november december
    """
)
_CONNECTORS = word_set("of de del della der den van von la le du da di for")
_TOKEN_RE = re.compile(r"[^\W_][\w'’&-]*|[^\w\s]")
_WORD_RE = re.compile(r"[^\W\d_][\w'’-]*")
_SENTENCE_RE = re.compile(r"(?<=[.!?。！？])\s+|\n\s*\n")
#: Any fenced block `<tag attrs>body</tag>` (the pipeline fences documents, extractions and stats).
_FENCE_RE = re.compile(r"<([a-z][\w-]*)\b([^>]*)>(.*?)</\1>", re.S)
_DOC_ID_RE = re.compile(r"""\bid\s*=\s*["']([^"']*)["']""")
_INJECTION_RE = re.compile(r"ignore\s+(?:all\s+)?(?:the\s+|any\s+)?previous\s+instructions", re.I)
_QUOTED_RE = re.compile(r"""['"‘“«]([^'"‘’“”«»\s]{1,40})['"’”»]""")

#: Scripts from here on (CJK) write words without spaces; one character can be a term.
_CJK_START = 0x2E80
MAX_TOPICS = 12
MAX_PHRASES = 12
MAX_SENTENCES = 8


@dataclass(frozen=True, slots=True)
class Phrase:
    """A capitalised phrase and the words around its first occurrence (cues for its type)."""

    text: str
    count: int
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class TextAnalysis:
    text: str
    doc_id: str | None
    counts: Mapping[str, int]
    topics: tuple[str, ...]
    phrases: tuple[Phrase, ...]
    sentences: tuple[str, ...]
    injected_word: str | None


def _user_texts(params: Mapping[str, Any]) -> list[str]:
    """The text of every user turn, last turn first."""
    texts = []
    for message in reversed(params.get("messages") or ()):
        if not isinstance(message, Mapping) or message.get("role") != "user":
            continue
        content = message.get("content", "")
        if isinstance(content, str):
            texts.append(content)
        else:
            texts.append(
                "\n".join(
                    str(b.get("text", ""))
                    for b in content
                    if isinstance(b, Mapping) and b.get("type") == "text"
                )
            )
    return texts


def source_text(params: Mapping[str, Any]) -> tuple[str, str | None]:
    """The text to answer from: the fenced bodies of the latest user turn that has any.

    A repair turn ("your previous answer could not be used...") carries no fence, so the answer is
    still about the document of the first turn, as a real model's would be. Without any fence the
    last user turn is the text. A JSON body (an extraction, corpus statistics) is read as prose.
    """
    texts = _user_texts(params)
    for text in texts:
        blocks = _FENCE_RE.findall(text)
        if blocks:
            doc_id = next((m.group(1) for _, attrs, _ in blocks if (m := _DOC_ID_RE.search(attrs))), None)
            return "\n\n".join(_prose(body.strip()) for _, _, body in blocks), doc_id
    return (texts[0].strip() if texts else ""), None


def _prose(body: str) -> str:
    """A JSON body as sentences ("distribution: business 137, technical 91."), anything else as is."""
    if not body.startswith(("{", "[")):
        return body
    try:
        data = json.loads(body)
    except ValueError:
        return body
    return (
        " ".join(_sentence_of(key, value) for key, value in data.items()) if isinstance(data, dict) else body
    )


def _sentence_of(key: str, value: Any) -> str:
    return f"{key.replace('_', ' ').capitalize()}: {_phrase_of(value)}."


def _phrase_of(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k.replace('_', ' ')} {_phrase_of(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(_phrase_of(item) for item in value[:15])
    return str(value)


def _sentences(text: str, counts: Mapping[str, int]) -> tuple[str, ...]:
    candidates = [" ".join(s.split()) for s in _SENTENCE_RE.split(text)]
    candidates = [s for s in candidates if _WORD_RE.search(s)]

    def score(item: tuple[int, str]) -> tuple[float, int]:
        position, sentence = item
        words = {w.lower() for w in _WORD_RE.findall(sentence)} - _STOPWORDS
        return (-sum(counts.get(w, 0) for w in words) / (1 + len(words)) ** 0.5, position)

    ranked = sorted(enumerate(candidates), key=score)
    return tuple(s for _, s in ranked[:MAX_SENTENCES])


def _is_capitalised(token: str) -> bool:
    return token[0].isupper() or (token[0].isdigit() and any(c.isupper() for c in token))


def _phrases(text: str, lowered_words: frozenset[str]) -> tuple[Phrase, ...]:
    found: dict[str, list[Any]] = {}
    for sentence in _SENTENCE_RE.split(text):
        tokens = _TOKEN_RE.findall(sentence)
        i = 0
        while i < len(tokens):
            if not (tokens[i][0].isalnum() and _is_capitalised(tokens[i])):
                i += 1
                continue
            j = i + 1
            while j < len(tokens) and (
                (tokens[j][0].isalnum() and (_is_capitalised(tokens[j]) or tokens[j].isdigit()))
                or (tokens[j] in _CONNECTORS and j + 1 < len(tokens) and _is_capitalised(tokens[j + 1]))
            ):
                j += 1
            words = tokens[i:j]
            while words and words[0].lower() in _STOPWORDS:
                words = words[1:]
            single_common = len(words) == 1 and (
                words[0].lower() in _NOT_NAMES or (i == 0 and words[0].lower() in lowered_words)
            )
            if words and not single_common and not words[0].isdigit():
                name = " ".join(words)
                before = next((t for t in reversed(tokens[:i]) if t[0].isalnum()), "")
                after = tokens[j] if j < len(tokens) else ""
                entry = found.setdefault(name, [0, len(found), before.lower(), after.lower()])
                entry[0] += 1
            i = j
    multi = [n.split() for n in found if " " in n]
    names = [n for n in found if " " in n or not any(n in words for words in multi)]
    names.sort(key=lambda n: (-found[n][0], found[n][1]))
    return tuple(Phrase(n, found[n][0], found[n][2], found[n][3]) for n in names[:MAX_PHRASES])


def _injected_word(text: str) -> str | None:
    match = _INJECTION_RE.search(text)
    if match is None:
        return None
    quoted = _QUOTED_RE.search(text, match.end()) or _QUOTED_RE.search(text)
    return quoted.group(1) if quoted else None


def analyse(text: str, doc_id: str | None = None) -> TextAnalysis:
    found = _WORD_RE.findall(text)
    all_words = [w.lower() for w in found]
    words = tuple(w for w in all_words if w not in _STOPWORDS and (len(w) >= 3 or ord(w[0]) >= _CJK_START))
    counts = Counter(words)
    first = {w: i for i, w in reversed(list(enumerate(words)))}
    topics = sorted(counts, key=lambda w: (-counts[w], first[w]))[:MAX_TOPICS]
    lowered = frozenset(w.lower() for w in found if w[0].islower())
    return TextAnalysis(
        text=text,
        doc_id=doc_id,
        counts=counts,
        topics=tuple(topics),
        phrases=_phrases(text, lowered),
        sentences=_sentences(text, counts),
        injected_word=_injected_word(text),
    )
