"""The one token estimate (tokens.py): pinned so usage, count_tokens and limits stay consistent."""

from __future__ import annotations

import pytest

from llm_pipeline.simulator.tokens import estimate_input_tokens, estimate_output_tokens, text_tokens


@pytest.mark.parametrize(("text", "tokens"), [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("é" * 8, 2)])
def test_text_is_a_quarter_token_per_character_rounded_up(text, tokens):
    assert text_tokens(text) == tokens


def user(content):
    return {"role": "user", "content": content}


@pytest.mark.parametrize(
    ("params", "tokens"),
    [
        ({"messages": [user("abcdefgh")]}, 3 + 4 + 2),
        ({"messages": [user("abcd"), {"role": "assistant", "content": "abcd"}]}, 3 + 2 * (4 + 1)),
        ({"system": "abcd", "messages": [user("abcd")]}, 3 + 1 + 4 + 1),
        (
            {"messages": [user([{"type": "text", "text": "abcd"}, {"type": "text", "text": "abcd"}])]},
            3 + 4 + 2,
        ),
        ({"messages": [user([{"type": "image", "source": {}}])]}, 3 + 4 + 1_600),
        (
            {"messages": [user("abcd")], "tools": [{"name": "ab", "description": "cd", "input_schema": {}}]},
            3 + 4 + 1 + (8 + 1 + 1),
        ),
        (
            {"messages": [user("abcd")], "output_config": {"format": {"type": "json_schema", "schema": {}}}},
            3 + 4 + 1 + (8 + 1),
        ),
    ],
)
def test_input_estimate(params, tokens):
    assert estimate_input_tokens(params) == tokens


def test_output_estimate_counts_text_and_tool_input_and_is_never_zero():
    assert estimate_output_tokens([{"type": "text", "text": ""}]) == 1
    assert estimate_output_tokens([{"type": "text", "text": "abcdefgh"}]) == 2
    assert estimate_output_tokens([{"type": "tool_use", "input": {"a": 1}}]) == 4 + 2
