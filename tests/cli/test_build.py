"""``reaseq build`` on a RecBole folder, end to end, to a bundle the service loads and serves."""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from loadtest.service_process import ServiceDidNotStart, serving_process
from offline.data.canonical import Dataset
from offline.knowledge.runner import read_records
from service.app import create_app
from service.bundles.loaded import LoadedBundle
from service.contracts.bundle_root import current_bundle_dir, read_current, recorded_user_snapshot
from service.contracts.manifest import read_manifest
from service.settings import Settings
from tests.support.loaders import write_recbole
from tests.support.ports import free_port
from tests.support.reaseq import run_reaseq


@dataclass(frozen=True)
class Build:
    bundles: Path
    work: Path
    output: str


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    root = tmp_path_factory.mktemp("build")
    source = write_recbole(root / "recbole", n_users=40, n_items=60, n=400)
    bundles, work = root / "bundles", root / "work"
    out = run_reaseq(
        "build",
        "--format",
        "recbole",
        "--source",
        str(source),
        "--epochs",
        "1",
        "--dim",
        "8",
        "--bundles",
        str(bundles),
        "--work",
        str(work),
        "--threads",
        "1",
    )
    assert "knowledge: " in out and "0 fallbacks" in out
    parity = float(out.split("parity (max abs score difference):")[1].split()[0])
    assert parity <= 1e-4
    return Build(bundles, work, out)


@pytest.fixture(scope="module")
def built(build: Build) -> tuple[Path, Path]:
    return build.bundles, build.work


def test_the_bundle_loads_and_records_the_encoder(built: tuple[Path, Path]) -> None:
    bundles, work = built
    version = read_current(bundles)
    bundle = LoadedBundle.load(bundles / version)
    manifest = read_manifest(bundles / version)
    assert manifest.text_encoder is not None and manifest.text_encoder.name == "tfidf-svd"
    assert 0 < manifest.dimensions.semantic_dim <= 8
    assert {"model", "id_only", "random"} <= set(manifest.metrics)
    records = read_records(work / "knowledge.jsonl")
    assert len(records) == manifest.item_table.rows == len(bundle.items.ids)
    assert records[0].schema_version == 3 and records[0].category_path[0] == "Catalogue"


@pytest.mark.anyio
async def test_the_service_scores_a_request_on_it(built: tuple[Path, Path]) -> None:
    bundles, _ = built
    app = create_app(Settings(bundle_root=bundles, embedded_users_path=bundles / "no-users.npz"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://rank") as client:
            body = {
                "user_id": "u3",
                "candidates": ["i1", "i2", "i7", "i999999"],
                "top_k": 3,
                "recent_events": [{"item_id": "i5", "event": "click", "ts": 1_605_000_000}],
            }
            response = await client.post("/v1/rank", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert len(answer["items"]) == 3
    assert "unknown_items" in answer["degraded"]
    scores = [item["score"] for item in answer["items"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)


def test_a_rebuild_reuses_the_knowledge_cache(built: tuple[Path, Path], tmp_path: Path) -> None:
    _, work = built
    out = run_reaseq(
        "knowledge",
        "--data",
        str(work / "data"),
        "--cache",
        str(work / "knowledge.sqlite"),
        "--out",
        str(tmp_path / "records.jsonl"),
        "--no-progress",
    )
    report = json.loads(out)
    assert report["items"] == report["items_from_cache"] > 0 and report["agent_calls"] == 0
    run_reaseq(
        "encode",
        "--records",
        str(tmp_path / "records.jsonl"),
        "--dim",
        "8",
        "--out",
        str(tmp_path / "vectors.npz"),
    )
    import numpy as np

    with np.load(tmp_path / "vectors.npz") as saved:
        assert saved["vectors"].shape[0] == report["items"]
        assert json.loads(str(saved["encoder"]))["name"] == "tfidf-svd"


def _serve_environment(output: str) -> dict[str, str]:
    """The variables of the ``serve: VAR=value ... reaseq serve`` line the build printed."""
    line = next(line for line in output.splitlines() if line.startswith("serve: "))
    words = shlex.split(line.removeprefix("serve: "))
    assert words[-2:] == ["reaseq", "serve"], line
    return dict(word.split("=", 1) for word in words[:-2])


def test_the_printed_serve_line_serves_the_datasets_users(
    build: Build, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _serve_environment(build.output)
    assert set(env) == {"REASEQ_BUNDLE_ROOT"}  # the bundle root names the user snapshot
    bundle_dir = current_bundle_dir(build.bundles)
    assert recorded_user_snapshot(bundle_dir).resolve() == (build.work / "users.npz").resolve()
    dataset = Dataset.load(build.work / "data")
    behaviours = dataset.behaviours
    user = int(np.bincount(behaviours.user_idx).argmax())
    items = dataset.catalogue.item_ids[behaviours.item_idx[behaviours.user_idx == user]]
    body = {"user_id": str(dataset.user_ids[user]), "candidates": list(dict.fromkeys(items))[:5]}

    monkeypatch.delenv("REASEQ_EMBEDDED_USERS_PATH", raising=False)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "cli.main", "serve", "--port", str(port)]
    log = tmp_path / "service.log"
    try:
        with serving_process(command, env, log, url, deadline_s=60):
            response = httpx.post(f"{url}/v1/rank", json=body, timeout=30)
    except ServiceDidNotStart as error:
        pytest.fail(f"{error}:\n{log.read_text()[-4000:]}")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["degraded"] == []
    assert sorted(item["item_id"] for item in answer["items"]) == sorted(body["candidates"])


def test_train_reuses_the_builds_knowledge_and_encoder(build: Build, tmp_path: Path) -> None:
    out = run_reaseq(
        "train", "--data", str(build.work / "data"), "--out", str(tmp_path / "model"),
        "--knowledge", str(build.work / "knowledge.jsonl"), "--dim", "8",
        "--epochs", "1", "--threads", "1",
    )  # fmt: skip
    retrained = json.loads((tmp_path / "model" / "text_encoder.json").read_text())
    assert retrained == json.loads((build.work / "model" / "text_encoder.json").read_text())
    assert json.loads(out)["model"]["examples"] > 0
