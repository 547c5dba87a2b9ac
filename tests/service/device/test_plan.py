"""Settings choose how the service scores: the host path by default (no PyTorch), the device path
for REASEQ_DEVICE=cuda or a tensor attention backend; conflicts fail at start-up with a message."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import onnxruntime
import pytest
from pydantic import ValidationError

from kernels.target_attention import AttentionBackend, host_attention
from service.app import create_app
from service.bundles.loaded import LoadedBundle
from service.device.plan import DeviceUnavailable, open_runner, plan_scoring
from service.ranking.scoring import GraphRunner
from service.settings import Settings
from tests.support.users import demo_users, write_embedded

torch = pytest.importorskip("torch")


def test_the_default_is_the_host_path() -> None:
    plan = plan_scoring(Settings())
    assert not plan.on_device and plan.backend is AttentionBackend.ONNX_CPU
    assert plan.providers == ("CPUExecutionProvider",) and plan.cuda_devices == []
    assert "host path" in plan.describe()
    assert plan.thread_niceness == 5
    assert "model threads 5 nice levels below the event loop" in plan.describe()
    assert "nice" not in plan_scoring(Settings(model_thread_niceness=0)).describe()


@pytest.mark.parametrize(
    ("workers", "cores", "threads"), [(1, 2, 2), (2, 2, 2), (4, 2, 2), (2, 8, 8), (1, 1, 1)]
)
def test_a_large_requests_attention_may_use_every_core_in_every_worker_by_default(
    workers: int, cores: int, threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("service.device.plan.usable_cores", lambda: cores)
    plan = plan_scoring(Settings(workers=workers))
    assert plan.attention_threads == threads
    assert f"over {threads} thread" in plan.describe()
    assert plan_scoring(Settings(workers=workers, attention_threads=3)).attention_threads == 3


def test_a_tensor_backend_on_cpu_is_the_device_path_on_the_cpu() -> None:
    plan = plan_scoring(Settings(attention_backend="triton"))
    assert plan.on_device and plan.device == "cpu" and plan.device_graphs == "onnxruntime"
    assert plan.describe().startswith("device path on cpu")
    # The device path's scoring threads run below the event loop too.
    assert plan.thread_niceness == 5 and plan.describe().endswith("below the event loop")


def test_missing_providers_are_skipped_with_a_warning(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REASEQ_ONNX_PROVIDERS", "NoSuchExecutionProvider, CPUExecutionProvider")
    plan = plan_scoring(Settings())
    assert plan.providers == ("CPUExecutionProvider",)
    assert "NoSuchExecutionProvider" in caplog.text


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"device": "cuda", "attention_backend": "onnx_cpu"}, "runs on the host"),
        ({"attention_backend": "triton", "graph_mode": "full"}, "host path only"),
    ],
)
def test_conflicting_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**settings)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_says_what_is_missing() -> None:
    with pytest.raises(DeviceUnavailable, match="sees no CUDA device"):
        plan_scoring(Settings(device="cuda"))


def test_onnxruntime_graphs_need_the_devices_provider() -> None:
    settings = Settings(
        attention_backend="torch",
        device_graphs="onnxruntime",
        onnx_providers=["AzureExecutionProvider", "CPUExecutionProvider"],
    )
    if "AzureExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("needs a second onnxruntime provider to put first")
    with pytest.raises(DeviceUnavailable, match="CPUExecutionProvider first"):
        plan_scoring(settings)


def test_a_bundle_without_module_weights_cannot_run_in_pytorch(bundle: LoadedBundle) -> None:
    plan = plan_scoring(Settings(attention_backend="torch", device_graphs="torch"))
    with pytest.raises(ValueError, match="no module weights"):
        open_runner(bundle, plan, Settings())


def test_open_runner_gives_the_host_runner_the_chosen_backend(bundle: LoadedBundle) -> None:
    settings = Settings(attention_backend="numpy")
    runner = open_runner(bundle, plan_scoring(settings), settings)
    assert isinstance(runner, GraphRunner)


def test_the_host_runners_attention_chunk_follows_its_setting(
    bundle: LoadedBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[int] = []

    def spy(backend: AttentionBackend, heads: int, head_dim: int, chunk_bytes: int) -> Any:
        asked.append(chunk_bytes)
        return host_attention(backend, heads, head_dim, chunk_bytes)

    monkeypatch.setattr("service.ranking.scoring.host_attention", spy)
    settings = Settings(attention_chunk_kb=64)
    open_runner(bundle, plan_scoring(settings), settings)
    assert asked == [64 * 1024]


def test_the_host_path_never_imports_pytorch(bundle: LoadedBundle) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from service.bundles.loaded import LoadedBundle\n"
        "from service.device.plan import open_runner, plan_scoring\n"
        "from service.settings import Settings\n"
        "settings = Settings()\n"
        "plan = plan_scoring(settings)\n"
        f"bundle = LoadedBundle.load(Path({str(bundle.directory)!r}), providers=plan.providers)\n"
        "open_runner(bundle, plan, settings).warm_up()\n"
        "assert 'torch' not in sys.modules and 'triton' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def model_serving(
    model_bundle_root: Path, model_bundle: LoadedBundle, tmp_path: Path
) -> Callable[..., Any]:
    users = write_embedded(tmp_path / "users.npz", demo_users(model_bundle))

    @asynccontextmanager
    async def serve(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        settings = Settings(bundle_root=model_bundle_root, embedded_users_path=users, **overrides)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://rank") as client:
                yield client

    return serve


@pytest.mark.anyio
async def test_the_service_on_the_device_path_answers_as_on_the_host_path(
    model_serving: Callable[..., Any],
) -> None:
    bodies = [
        {"user_id": "u1", "candidates": ["i1", "i3", "i9", "nope"], "explain": True},
        {"user_id": "u2", "candidates": ["i5"]},
        {
            "user_id": "u_empty",
            "candidates": ["i7", "i8"],
            "recent_events": [{"item_id": "i2", "event": "click", "ts": 1_763_999_000}],
        },
    ]
    answers = {}
    for name, overrides in (("host", {}), ("device", {"attention_backend": "triton"})):
        async with model_serving(**overrides) as client:
            answers[name] = [(await client.post("/v1/rank", json=b)).json() for b in bodies]
    for host, device in zip(answers["host"], answers["device"], strict=True):
        assert [i["item_id"] for i in device["items"]] == [i["item_id"] for i in host["items"]]
        for want, got in zip(host["items"], device["items"], strict=True):
            assert got["score"] == pytest.approx(want["score"], abs=1e-4)
        assert device["degraded"] == host["degraded"]
        if host["explanations"] is not None:
            for want, got in zip(host["explanations"], device["explanations"], strict=True):
                assert [b["item_id"] for b in got["behaviours"]] == [
                    b["item_id"] for b in want["behaviours"]
                ]
