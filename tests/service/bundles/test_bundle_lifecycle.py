"""Bundle activation, refusal and rollback on a real service process over real HTTP."""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis

from service.bundles.loaded import LoadedBundle
from service.contracts import keys
from service.stores.redis_writer import RedisWriter
from tests.support.bundles import build_bundle
from tests.support.http_server import ServiceProcess, running_service
from tests.support.serving import ADMIN_KEY
from tests.support.users import DemoUsers, write_redis

ADMIN = {"X-API-Key": ADMIN_KEY}
RANK = {"user_id": "u1", "candidates": ["i1", "i2", "i3", "i4", "i5"], "top_k": 3}


@pytest.fixture(scope="module")
def versions_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``test-1`` (CURRENT), ``test-2`` (same shapes), ``test-wide`` (d=16), and broken copies
    of ``test-2``: one with a flipped byte, one without its scorer graph."""
    root = tmp_path_factory.mktemp("versions")
    for version, dim in (("test-2", 8), ("test-wide", 16), ("test-1", 8)):
        build_bundle(root, version=version, dim=dim, heads=2)
    flipped = root / "test-flipped"
    shutil.copytree(root / "test-2", flipped)
    _rename(flipped, "test-flipped")
    vectors = flipped / "item_vectors.npy"
    raw = bytearray(vectors.read_bytes())
    raw[-1] ^= 0xFF
    vectors.write_bytes(bytes(raw))
    graphless = root / "test-graphless"
    shutil.copytree(root / "test-2", graphless)
    _rename(graphless, "test-graphless")
    (graphless / "scorer.onnx").unlink()
    # Bundles that reach outside their folder: a version folder that is a link elsewhere, and
    # manifests naming files by a relative path out of the folder or by an absolute path.
    outside = tmp_path_factory.mktemp("elsewhere") / "test-linked"
    shutil.copytree(root / "test-2", outside)
    _rename(outside, "test-linked")
    (root / "test-linked").symlink_to(outside, target_is_directory=True)
    for version, name in (
        ("test-escape", "../test-1/scorer.onnx"),
        ("test-absolute", str((root / "test-1" / "scorer.onnx").resolve())),
    ):
        shutil.copytree(root / "test-2", root / version)
        _rename(root / version, version)
        manifest = root / version / "manifest.json"
        manifest.write_text(manifest.read_text().replace('"scorer.onnx"', f'"{name}"'))
    return root


def _rename(bundle_dir: Path, version: str) -> None:
    manifest = bundle_dir / "manifest.json"
    manifest.write_text(
        manifest.read_text().replace('"version": "test-2"', f'"version": "{version}"')
    )


@pytest.fixture
def service(versions_root: Path, users_snapshot: Path, tmp_path: Path) -> Iterator[ServiceProcess]:
    with running_service(
        versions_root,
        users_snapshot,
        tmp_path / "service.log",
        admin_api_key=ADMIN_KEY,
        bundle_drain_timeout_s="5",
    ) as running:
        yield running


class Hammer:
    """Threads sending rank requests back to back, each recording (status, bundle version)."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self._url = url
        self._stop = threading.Event()
        self.answers: list[list[tuple[int, str | None]]] = [[] for _ in range(threads)]
        self._threads = [
            threading.Thread(target=self._send, args=(n,), daemon=True) for n in range(threads)
        ]

    def _send(self, n: int) -> None:
        with httpx.Client(base_url=self._url, timeout=10) as client:
            while not self._stop.is_set():
                response = client.post("/v1/rank", json=RANK)
                version = response.json().get("bundle_version")
                self.answers[n].append((response.status_code, version))

    def __enter__(self) -> Hammer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


def _post(service: ServiceProcess, path: str, **kwargs: object) -> httpx.Response:
    return httpx.post(f"{service.url}{path}", headers=ADMIN, timeout=60, **kwargs)  # type: ignore[arg-type]


def _served(service: ServiceProcess) -> dict[str, object]:
    return dict(httpx.get(f"{service.url}/v1/bundle", timeout=10).json())


def test_swap_under_load_answers_every_request(service: ServiceProcess) -> None:
    with Hammer(service.url) as hammer:
        time.sleep(0.5)
        activated = _post(service, "/v1/admin/bundle/activate", json={"version": "test-2"})
        # Every sender answered a few times after the swap (a busy machine may stall one
        # sender for longer than a fixed pause).
        after = [len(answers) for answers in hammer.answers]
        deadline = time.monotonic() + 30
        while any(len(a) < n + 3 for a, n in zip(hammer.answers, after, strict=True)):
            assert time.monotonic() < deadline, "a sender got no answer after the swap"
            time.sleep(0.05)
    assert activated.status_code == 200, activated.text
    assert activated.json() | {"seconds": 0} == {
        "version": "test-2",
        "previous_version": "test-1",
        "changed": True,
        "seconds": 0,
    }
    for answers in hammer.answers:
        assert answers, "a sender got no answer"
        assert {status for status, _ in answers} == {200}
        versions = [version for _, version in answers]
        assert versions[0] == "test-1", "the load started before the swap"
        flip = versions.index("test-2") if "test-2" in versions else len(versions)
        assert set(versions[:flip]) <= {"test-1"}
        assert set(versions[flip:]) == {"test-2"}, "an answer went back to the old bundle"
    assert all(answers[-1][1] == "test-2" for answers in hammer.answers)
    served = _served(service)
    assert (served["version"], served["previous_version"]) == ("test-2", "test-1")
    metrics = httpx.get(f"{service.url}/metrics").text
    assert 'reaseq_bundle_activations_total{result="success",trigger="admin"} 1.0' in metrics
    assert 'reaseq_bundle_reloads_total{result="success"} 1.0' in metrics
    assert 'reaseq_bundle_info{version="test-1"} 0.0' in metrics
    assert 'reaseq_bundle_info{version="test-2"} 1.0' in metrics


@pytest.mark.parametrize(
    ("version", "status", "code", "says"),
    [
        ("test-flipped", 409, "bundle_corrupt", "item_vectors.npy does not match its checksum"),
        ("test-linked", 409, "bundle_corrupt", "not a link"),
        ("test-escape", 409, "bundle_corrupt", "plain names in the bundle folder"),
        ("test-absolute", 409, "bundle_corrupt", "plain names in the bundle folder"),
        ("test-graphless", 409, "bundle_corrupt", "scorer.onnx is missing"),
        ("test-wide", 409, "bundle_incompatible", "d=16"),
        ("test-9", 404, "bundle_not_found", "bundle test-9 not found"),
    ],
)
def test_a_bad_bundle_is_refused_and_the_old_one_keeps_serving(
    service: ServiceProcess, version: str, status: int, code: str, says: str
) -> None:
    refused = _post(service, "/v1/admin/bundle/activate", json={"version": version})
    assert refused.status_code == status, refused.text
    assert refused.json()["code"] == code
    assert says in refused.json()["detail"]
    # No digest and no path of the machine in the answer.
    detail = refused.json()["detail"]
    assert "sha256" not in detail and not re.search(r"(^|[\s(])/", detail)
    ranked = httpx.post(f"{service.url}/v1/rank", json=RANK, timeout=10)
    assert ranked.status_code == 200
    assert ranked.json()["bundle_version"] == "test-1"
    assert _served(service)["previous_version"] is None
    assert httpx.get(f"{service.url}/readyz").status_code == 200


def test_versions_that_are_not_folder_names_are_invalid(service: ServiceProcess) -> None:
    for version in ("../test-1", ".hidden", "a/b", ""):
        answer = _post(service, "/v1/admin/bundle/activate", json={"version": version})
        assert answer.status_code == 422, version


def test_rollback_returns_to_the_previous_version(service: ServiceProcess) -> None:
    refused = _post(service, "/v1/admin/bundle/rollback")
    assert (refused.status_code, refused.json()["code"]) == (409, "no_previous_bundle")
    assert _post(service, "/v1/admin/bundle/activate", json={"version": "test-2"}).is_success
    again = _post(service, "/v1/admin/bundle/activate", json={"version": "test-2"})
    assert again.json()["changed"] is False
    back = _post(service, "/v1/admin/bundle/rollback")
    assert back.status_code == 200
    assert (back.json()["version"], back.json()["previous_version"]) == ("test-1", "test-2")
    ranked = httpx.post(f"{service.url}/v1/rank", json=RANK, timeout=10).json()
    assert ranked["bundle_version"] == "test-1"
    forward = _post(service, "/v1/admin/bundle/rollback")
    assert forward.json()["version"] == "test-2"


def test_admin_bundle_endpoints_need_the_admin_key(service: ServiceProcess) -> None:
    answer = httpx.post(f"{service.url}/v1/admin/bundle/rollback", timeout=10)
    assert answer.status_code == 401


def _publish_items(url: str, bundle: LoadedBundle) -> None:
    """A version's item vectors, without pointing the active version at it."""
    writer = RedisWriter.from_url(url)
    ids = bundle.items.ids.tolist()
    writer.write_item_vectors(bundle.version, ids, np.asarray(bundle.items.vectors))
    writer.close()


def test_redis_workers_follow_the_active_version(
    versions_root: Path, users_snapshot: Path, users: DemoUsers, redis_url: str, tmp_path: Path
) -> None:
    write_redis(redis_url, LoadedBundle.load(versions_root / "test-1"), users)
    with running_service(
        versions_root,
        users_snapshot,
        tmp_path / "service.log",
        admin_api_key=ADMIN_KEY,
        store="redis",
        redis_url=redis_url,
        redis_timeout_ms="1000",
        bundle_watch_interval_s="0.1",
    ) as service:
        unpublished = _post(service, "/v1/admin/bundle/activate", json={"version": "test-2"})
        assert (unpublished.status_code, unpublished.json()["code"]) == (409, "bundle_incompatible")
        assert "publish it first" in unpublished.json()["detail"]
        _publish_items(redis_url, LoadedBundle.load(versions_root / "test-2"))
        client = redis.Redis.from_url(redis_url)
        client.set(keys.ACTIVE_BUNDLE, "test-2")
        _wait_for_version(service, "test-2")
        rolled = _post(service, "/v1/admin/bundle/rollback")
        assert rolled.json()["version"] == "test-1"
        assert client.get(keys.ACTIVE_BUNDLE) == b"test-1", "an admin rollback moves the pointer"
        client.set(keys.ACTIVE_BUNDLE, "test-flipped")
        time.sleep(0.5)
        assert _served(service)["version"] == "test-1"
        metrics = httpx.get(f"{service.url}/metrics").text
        assert 'reaseq_bundle_activations_total{result="corrupt",trigger="watch"} 1.0' in metrics
    client.set(keys.ACTIVE_BUNDLE, "test-2")
    with running_service(
        versions_root,
        users_snapshot,
        tmp_path / "restarted.log",
        store="redis",
        redis_url=redis_url,
    ) as restarted:
        assert _served(restarted)["version"] == "test-2", "a new worker starts on the pointer"
    client.close()


def _wait_for_version(service: ServiceProcess, version: str, deadline_s: float = 15) -> None:
    stop = time.monotonic() + deadline_s
    while time.monotonic() < stop:
        if _served(service)["version"] == version:
            return
        time.sleep(0.05)
    pytest.fail(f"the service did not switch to {version}:\n{service.log.read_text()[-3000:]}")
