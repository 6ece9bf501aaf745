"""StepPrompt: a step's request rendered from its declaration, and its answers validated."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from llm_pipeline.claude.errors import BadOutput
from llm_pipeline.prompts.step_prompt import Fence, PromptError, StepPrompt, snippet
from llm_pipeline_tests.fixtures.messages import make_message

SENTIMENT = {
    "type": "object",
    "properties": {
        "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
        "score": {"type": "number", "minimum": -1, "maximum": 1},
    },
    "required": ["sentiment", "score"],
}


def _sentiment(**overrides: Any) -> StepPrompt:
    fields: dict[str, Any] = {
        "step": "sentiment",
        "instructions": "Rate the sentiment of one document.",
        "template": "Rate this document.\n\n{document}",
        "fences": {"document": Fence(("text",))},
        **overrides,
    }
    return StepPrompt.from_json_schema(SENTIMENT, **fields)


def test_the_request_fences_the_document_under_the_shared_instructions() -> None:
    request = _sentiment().request(
        {"doc_id": "d7", "text": "Great </document> news"}, model="m", max_tokens=64
    )
    params = request.params
    assert params["system"] == "Rate the sentiment of one document."
    (turn,) = params["messages"]
    assert (
        turn["content"] == 'Rate this document.\n\n<document id="d7">\nGreat &lt;/document> news\n</document>'
    )
    schema = params["output_config"]["format"]["schema"]
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"sentiment", "score"}
    assert (request.key, request.tags["step"], params["max_tokens"]) == ("d7", "sentiment", 64)


def test_several_columns_fill_a_fence_as_one_json_object_and_a_snippet_is_cut() -> None:
    prompt = _sentiment(
        template="Rate this.\n\n{extraction}\n\n{document}",
        fences={"extraction": Fence(("topics", "entities")), "document": Fence(("text",), max_chars=10)},
    )
    row = {
        "doc_id": "d",
        "topics": ["ai"],
        "entities": [{"name": "Ada", "type": "person"}],
        "text": "one two three",
    }
    content = prompt.request(row, model="m", max_tokens=8).params["messages"][0]["content"]
    extraction = json.dumps({"topics": ["ai"], "entities": [{"name": "Ada", "type": "person"}]})
    assert f'<extraction id="d">\n{extraction}\n</extraction>' in content
    assert '<document id="d">\none two …\n</document>' in content
    assert prompt.required_columns == ("topics", "entities", "text")


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({"sentiment": "positive", "score": 0.5}, None),
        ({"sentiment": "ecstatic", "score": 0.5}, "sentiment: 'ecstatic' is not one of"),
        ({"sentiment": "positive", "score": 3}, "score: 3 is greater than the maximum of 1"),
        ({"sentiment": "positive"}, "'score' is a required property"),
    ],
)
def test_answers_are_validated_against_the_json_schema_as_written(
    answer: dict[str, Any], problem: str | None
) -> None:
    prompt = _sentiment()
    if problem is None:
        assert prompt.parse(make_message(answer)) == answer
    else:
        with pytest.raises(BadOutput, match=problem):
            prompt.parse(make_message(answer))


def test_a_pydantic_model_validates_and_a_check_can_reject_a_valid_answer() -> None:
    class Label(BaseModel):
        model_config = ConfigDict(extra="forbid")
        label: str

    def known(value: Label) -> None:
        if value.label != "a":
            raise BadOutput(f"label {value.label!r} is not allowed")

    prompt = StepPrompt.from_model(
        Label,
        step="x",
        instructions="Label it.",
        template="{document}",
        fences={"document": Fence(("text",))},
        check=known,
    )
    assert prompt.parse(make_message({"label": "a"})) == {"label": "a"}
    with pytest.raises(BadOutput, match="'b' is not allowed"):
        prompt.parse(make_message({"label": "b"}))
    with pytest.raises(BadOutput, match="not valid JSON"):
        prompt.parse(make_message(text="{nope"))


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"template": "Rate this."}, "no {document} placeholder"),
        ({"template": "{document} {summary}"}, "placeholders ['summary'] are not fence tags"),
        ({"template": "{document} {extraction}"}, "placeholders ['extraction'] have no columns"),
        ({"instructions": "  "}, "instructions are empty"),
    ],
)
def test_a_bad_prompt_fails_when_the_step_is_defined(overrides: dict[str, Any], problem: str) -> None:
    with pytest.raises(PromptError, match=problem.replace("[", r"\[").replace("{", r"\{")):
        _sentiment(**overrides)


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        (
            {"type": "object", "properties": {"a": {"type": "strnig"}}},
            "invalid JSON Schema at properties/a/type",
        ),
        ({"type": "array", "items": {"type": "string"}}, "must describe an object"),
    ],
)
def test_an_invalid_json_schema_fails_when_the_step_is_defined(schema: dict[str, Any], problem: str) -> None:
    with pytest.raises(PromptError, match=problem):
        StepPrompt.from_json_schema(
            schema, step="x", instructions="Do it.", template="{document}", fences={"document": Fence(("t",))}
        )


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [("short", 10, "short"), ("one two three four", 9, "one two …"), ("abcdefghijkl", 5, "abcde …")],
)
def test_snippet_cuts_at_a_word_boundary(text: str, limit: int, expected: str) -> None:
    assert snippet(text, limit) == expected
