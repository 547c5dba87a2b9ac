"""Reading the JSON object out of what a model wrote."""

from __future__ import annotations

import pytest

from offline.llm import JSONExtractionError, extract_json_object


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "b": [1, 2]}',
        'Sure! Here it is:\n```json\n{"a": 1, "b": [1, 2,],}\n```\nAnything else?',
        'Reasoning first... then {"a": 1, "b": [1, 2]} and that is all.',
        '```\n{"a": 1, "b": [1, 2]}\n```',
        "{'a': 1, b: [1, 2]}",
        '{"a": 1, "b": [1, 2]} // done',
    ],
)
def test_json_is_found_in_prose_fences_and_slips(text: str) -> None:
    assert extract_json_object(text) == {"a": 1, "b": [1, 2]}


def test_braces_and_commas_inside_strings_are_left_alone() -> None:
    text = 'x {"reasoning": "a {tricky}, string,}", "n": [1,]} y'
    assert extract_json_object(text) == {"reasoning": "a {tricky}, string,}", "n": [1]}


def test_the_first_of_several_objects_is_the_answer() -> None:
    text = 'First ```json\n{"a": 1}\n``` or maybe ```json\n{"b": 2}\n```'
    assert extract_json_object(text) == {"a": 1}
    assert extract_json_object('[{"a": 1}, {"b": 2}]') == {"a": 1}


def test_an_unclosed_object_is_closed_for_the_schema_to_judge() -> None:
    # The chat client refuses an answer cut off at max_tokens before it gets here.
    assert extract_json_object('{"a": 1, "b": [1') == {"a": 1, "b": [1]}


@pytest.mark.parametrize("text", ["no json here", "", "[1, 2]", 'I think ["oops", ', '"a string"'])
def test_text_without_an_object_is_a_clear_error(text: str) -> None:
    with pytest.raises(JSONExtractionError, match="no JSON object"):
        extract_json_object(text)
