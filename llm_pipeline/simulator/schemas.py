"""Walk a JSON Schema and build an instance that satisfies it; a `Provider` supplies the content.

The walker owns the structure (types, `$ref`/`$defs` as pydantic emits them, `allOf`/`anyOf`,
`const`, `enum`, `prefixItems`, item counts, numeric and length bounds); the provider owns the
meaning (which topic, which label, which sentence). Every value is addressed by a `Slot`: its
property name, the name of the property that encloses it, and its position in an array, so the
provider can say "the type of entity 3". Recursive schemas stop at `MAX_DEPTH`, where only
required properties and empty arrays are produced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["MAX_DEPTH", "Provider", "SchemaFiller", "Slot", "resolve", "wrong_value"]

MAX_DEPTH = 8
MAX_ITEMS = 50


@dataclass(frozen=True, slots=True)
class Slot:
    key: str
    parent: str = ""
    index: int = 0


class Provider(Protocol):
    def array_length(self, slot: Slot, item_schema: Mapping[str, Any]) -> int: ...
    def string(self, slot: Slot, schema: Mapping[str, Any]) -> str: ...
    def enum(self, slot: Slot, values: Sequence[Any]) -> Any: ...
    def number(self, slot: Slot, low: float | None, high: float | None, integer: bool) -> float: ...
    def boolean(self, slot: Slot) -> bool: ...


def _pointer(root: Mapping[str, Any], ref: str) -> Mapping[str, Any]:
    if not ref.startswith("#"):
        return {}
    node: Any = root
    for part in ref[1:].split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        node = node.get(part, {}) if isinstance(node, Mapping) else {}
    return node if isinstance(node, Mapping) else {}


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if key == "properties" and isinstance(base.get(key), Mapping):
            base[key] = {**base[key], **value}
        elif key == "required" and isinstance(base.get(key), list):
            base[key] = [*base[key], *(r for r in value if r not in base[key])]
        else:
            base.setdefault(key, value)
    return base


def resolve(schema: Any, root: Mapping[str, Any]) -> dict[str, Any]:
    """`schema` with `$ref`, `allOf` and nullable `anyOf`/`oneOf` flattened into one dict."""
    if not isinstance(schema, Mapping):
        return {}
    current = dict(schema)
    for _ in range(MAX_DEPTH):
        if "$ref" in current:
            target = _pointer(root, current.pop("$ref"))
            current = _merge(current, target)
        elif "allOf" in current:
            parts = current.pop("allOf")
            for part in parts:
                current = _merge(current, resolve(part, root))
        elif "anyOf" in current or "oneOf" in current:
            options = current.pop("anyOf", None) or current.pop("oneOf", None) or []
            chosen = next((o for o in options if resolve(o, root).get("type") != "null"), None)
            if chosen is None:
                return {"type": "null"}
            current = _merge(current, chosen)
        else:
            return current
    return current


def _kind(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind:
        return str(kind)
    if "properties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return "string"


class SchemaFiller:
    """Builds one instance of `root` with content from `provider`."""

    def __init__(self, root: Mapping[str, Any], provider: Provider) -> None:
        self._root = root
        self._provider = provider

    def fill(self) -> Any:
        return self._value(self._root, Slot(""), 0)

    def _value(self, schema: Any, slot: Slot, depth: int) -> Any:
        schema = resolve(schema, self._root)
        if "const" in schema:
            return schema["const"]
        values = schema.get("enum")
        if isinstance(values, list) and values:
            return self._provider.enum(slot, values)
        kind = _kind(schema)
        if kind == "object":
            return self._object(schema, slot, depth)
        if kind == "array":
            return self._array(schema, slot, depth)
        if kind in ("number", "integer"):
            return self._number(schema, slot, integer=kind == "integer")
        if kind == "boolean":
            return self._provider.boolean(slot)
        if kind == "null":
            return None
        return self._string(schema, slot)

    def _object(self, schema: Mapping[str, Any], slot: Slot, depth: int) -> dict[str, Any]:
        properties = schema.get("properties") or {}
        required = set(schema.get("required") or ())
        return {
            name: self._value(sub, Slot(name, slot.key, slot.index), depth + 1)
            for name, sub in properties.items()
            if depth < MAX_DEPTH or name in required
        }

    def _array(self, schema: Mapping[str, Any], slot: Slot, depth: int) -> list[Any]:
        prefix = schema.get("prefixItems") or []
        items = schema.get("items")
        item_schema = resolve(items if isinstance(items, Mapping) else {}, self._root)
        low = int(schema.get("minItems", 0))
        high = schema.get("maxItems")
        wanted = 0 if depth >= MAX_DEPTH else self._provider.array_length(slot, item_schema)
        count = max(low, len(prefix), min(wanted, MAX_ITEMS))
        if high is not None:
            count = min(count, int(high))
        if items is False:
            count = min(count, len(prefix))
        result = []
        for i in range(count):
            sub = prefix[i] if i < len(prefix) else item_schema
            result.append(self._value(sub, Slot(slot.key, slot.parent, i), depth + 1))
        if schema.get("uniqueItems"):
            result = _unique(result)
        return result

    def _number(self, schema: Mapping[str, Any], slot: Slot, *, integer: bool) -> float | int:
        low = schema.get("minimum")
        high = schema.get("maximum")
        step = 1 if integer else 1e-6
        if "exclusiveMinimum" in schema:
            low = schema["exclusiveMinimum"] + step
        if "exclusiveMaximum" in schema:
            high = schema["exclusiveMaximum"] - step
        value = self._provider.number(slot, low, high, integer)
        if low is not None:
            value = max(value, low)
        if high is not None:
            value = min(value, high)
        return round(value) if integer else value

    def _string(self, schema: Mapping[str, Any], slot: Slot) -> str:
        text = self._provider.string(slot, schema)
        low = int(schema.get("minLength", 0))
        high = schema.get("maxLength")
        if len(text) < low:
            text = text + "." * (low - len(text))
        if high is not None and len(text) > int(high):
            text = text[: int(high)]
        return text


def _unique(values: list[Any]) -> list[Any]:
    seen: list[Any] = []
    for i, value in enumerate(values):
        if value in seen and isinstance(value, str):
            value = f"{value} {i + 1}"
        seen.append(value)
    return seen


def wrong_value(value: Any) -> Any:
    """A value of another JSON type than `value`, to break a schema on purpose."""
    if isinstance(value, bool):
        return "maybe"
    if isinstance(value, str):
        return 12345
    if isinstance(value, int | float):
        return "high"
    if isinstance(value, list):
        return "none"
    return "n/a"
