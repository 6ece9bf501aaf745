"""The input-token guess every booking starts from: a table of prompts and their estimates."""

from __future__ import annotations

import pytest

from llm_pipeline.claude.token_estimate import estimate_input_tokens


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"messages": [{"role": "user", "content": "x" * 300}]}, 100 + 2 + 16),  # "user" counts too
        ({"system": "abc", "messages": []}, 1 + 16),
        ({"messages": [{"role": "user", "content": "é" * 30}]}, 20 + 2 + 16),  # 60 UTF-8 bytes
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image", "source": {"data": "A" * 99_999}}]}
                ]
            },
            2 + 16 + 1_600,
        ),
        ({"metadata": {"user_id": "x" * 900}, "messages": []}, 16),  # not part of the prompt
    ],
)
def test_estimate_input_tokens(params: dict, expected: int) -> None:
    assert estimate_input_tokens(params) == expected
