"""Reading JSON out of model prose, and the retry policy's delays."""

from __future__ import annotations

import random

import httpx
import pytest

from offline.llm import EndpointSettings, JsonEndpoint, JSONExtractionError, extract_json_object
from offline.llm.endpoint import retry_after_s


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "b": [1, 2]}',
        'Sure! Here it is:\n```json\n{"a": 1, "b": [1, 2,],}\n```\nAnything else?',
        'Reasoning first... then {"a": 1, "b": [1, 2]} and that is all.',
        '```\n{"a": 1, "b": [1, 2]}\n```',
    ],
)
def test_json_is_found_in_prose_fences_and_trailing_commas(text: str) -> None:
    assert extract_json_object(text) == {"a": 1, "b": [1, 2]}


def test_braces_and_commas_inside_strings_are_left_alone() -> None:
    text = 'x {"reasoning": "a {tricky}, string,}", "n": [1,]} y'
    assert extract_json_object(text) == {"reasoning": "a {tricky}, string,}", "n": [1]}


@pytest.mark.parametrize("text", ["no json here", '{"a": 1', '{"a": }', "[1, 2]"])
def test_unusable_text_is_a_clear_error(text: str) -> None:
    with pytest.raises(JSONExtractionError):
        extract_json_object(text)


def test_backoff_grows_is_capped_and_honours_retry_after() -> None:
    settings = EndpointSettings(backoff_base_s=0.5, backoff_max_s=4.0)
    endpoint = JsonEndpoint(settings, rng=random.Random(0))
    delays = [endpoint.backoff_s(attempt, None) for attempt in range(8)]
    assert all(0 <= d <= min(4.0, 0.5 * 2**a) for a, d in enumerate(delays))
    assert endpoint.backoff_s(0, 3.0) >= 3.0
    assert endpoint.backoff_s(0, 60.0) == 4.0  # a server's wish is capped too
    response = httpx.Response(429, headers={"Retry-After": "2"})
    assert retry_after_s(response) == 2.0
    assert retry_after_s(httpx.Response(429)) is None
    dated = httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert retry_after_s(dated) == 0.0
