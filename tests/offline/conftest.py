"""Synthetic datasets shared by the offline tests, generated once per test run, and the
scripted OpenAI-compatible server the LLM clients' tests talk to over loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from offline.data.canonical import Dataset
from offline.data.synthetic import GroundTruth, SyntheticConfig, generate_with_truth
from tests.offline.llm_server import ServerScript, serve


@pytest.fixture(scope="package")
def tiny() -> tuple[Dataset, GroundTruth]:
    return generate_with_truth(SyntheticConfig.preset("tiny"))


@pytest.fixture(scope="package")
def small() -> tuple[Dataset, GroundTruth]:
    return generate_with_truth(SyntheticConfig.preset("small"))


@pytest.fixture
def script() -> ServerScript:
    return ServerScript()


@pytest.fixture
def url(script: ServerScript) -> Iterator[str]:
    with serve(script) as base_url:
        yield base_url
