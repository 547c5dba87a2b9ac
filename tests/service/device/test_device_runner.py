"""The device path scores like the host path: the same mixed batches through
:class:`DeviceRunner` (each engine for the graphs, each tensor attention backend, on the CPU and,
marked ``gpu``, on CUDA) and through the host :class:`GraphRunner`, to 1e-4."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pytest

from service.bundles.loaded import LoadedBundle
from service.ranking.behaviours import BehaviourBlock
from service.ranking.scoring import GraphRunner, ScoreResult, ScoringRequest
from service.ranking.user_cache import UserKey, UserStateCache, behaviours_fingerprint
from service.settings import Settings
from tests.support.behaviours import random_block

torch = pytest.importorskip("torch")

from service.device.plan import DeviceUnavailable, plan_scoring  # noqa: E402
from service.device.runner import DevicePool, DeviceRunner  # noqa: E402

TOLERANCE = 1e-4
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param("cuda", id="cuda", marks=[pytest.mark.gpu, CUDA]),
]
#: (candidates, real behaviours, generated behaviours, explain): one candidate, an empty
#: generated block, a user without history, a request without candidates, the longest sequence.
MIXED = [(1, 5, 2, True), (7, 12, 0, True), (3, 0, 4, False), (0, 3, 1, True), (9, 1, 1, False)]


def _block(rng: np.random.Generator, length: int, dim: int, generated: bool) -> BehaviourBlock:
    """Behaviours on items the test bundle knows (i0 … i63)."""
    return random_block(rng, length, dim, generated=generated, items=64, max_gap=18)


def mixed_batch(
    bundle: LoadedBundle, shapes: list[tuple[int, int, int, bool]] = MIXED, seed: int = 0
) -> Callable[[], list[ScoringRequest]]:
    """A factory of fresh requests (a runner writes the encoded user into a request). Some
    candidates are unknown to the item table: they carry the store's vector (the default)."""
    rng = np.random.default_rng(seed)
    dim = bundle.items.dim
    drawn = []
    for candidates, real, generated, explain in shapes:
        ids = [f"i{n}" if n < 64 else f"unknown-{n}" for n in rng.integers(0, 70, candidates)]
        vectors, _ = bundle.items.lookup(ids)
        drawn.append(
            (
                vectors,
                ids,
                _block(rng, real, dim, False),
                _block(rng, generated, dim, True),
                explain,
            )
        )

    def requests() -> list[ScoringRequest]:
        return [
            ScoringRequest(vectors, real, generated, explain, candidate_ids=ids)
            for vectors, ids, real, generated, explain in drawn
        ]

    return requests


def device_runner(
    bundle_dir: object, device: str, backend: str, engine: str, cache: UserStateCache | None = None
) -> tuple[DeviceRunner, LoadedBundle]:
    """The runner the service would open for these settings, on its own load of the bundle."""
    if device == "cpu" and backend == "triton" and os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("Triton on CPU tensors needs the interpreter (this machine has a GPU)")
    settings = Settings.model_validate(
        {"device": device, "attention_backend": backend, "device_graphs": engine}
    )
    try:
        plan = plan_scoring(settings)
    except DeviceUnavailable as error:
        pytest.skip(str(error))
    bundle = LoadedBundle.load(
        bundle_dir,  # type: ignore[arg-type]
        providers=plan.providers,
        float32_items_max_bytes=int(settings.item_table_float32_mb * 2**20),
    )
    return DeviceRunner.open(bundle, plan, cache=cache), bundle


def assert_same(expected: list[ScoreResult], found: list[ScoreResult], tol: float) -> None:
    for want, got in zip(expected, found, strict=True):
        assert got.scores.shape == want.scores.shape and got.scores.dtype == np.float32
        np.testing.assert_allclose(got.scores, want.scores, atol=tol, rtol=0)
        for want_w, got_w in (
            (want.real_weights, got.real_weights),
            (want.generated_weights, got.generated_weights),
        ):
            if want_w is None:
                assert got_w is None
            else:
                assert got_w is not None and got_w.shape == want_w.shape
                np.testing.assert_allclose(got_w, want_w, atol=tol, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", ["triton", "torch"])
@pytest.mark.parametrize("engine", ["onnxruntime", "torch"])
def test_a_mixed_batch_scores_as_on_the_host_path(
    model_bundle: LoadedBundle, device: str, backend: str, engine: str
) -> None:
    requests = mixed_batch(model_bundle)
    expected = GraphRunner(model_bundle).score_batch(requests())
    runner, _ = device_runner(model_bundle.directory, device, backend, engine)
    assert runner.graphs_engine == engine
    assert_same(expected, runner.score_batch(requests()), TOLERANCE)


@pytest.mark.parametrize("device", DEVICES)
def test_cached_users_keep_their_keys_and_values_on_the_device(
    model_bundle: LoadedBundle, device: str
) -> None:
    cache = UserStateCache(1 << 20)
    runner, bundle = device_runner(model_bundle.directory, device, "triton", "torch", cache)
    requests = mixed_batch(model_bundle, seed=3)

    def keyed(batch: list[ScoringRequest]) -> list[ScoringRequest]:
        for n, request in enumerate(batch):
            request.user_key = UserKey(f"u{n}", bundle.version)
            request.fingerprint = behaviours_fingerprint(request.real, request.generated)
            request.encoded = cache.get(request.user_key, request.fingerprint)
        return batch

    first = runner.score_batch(keyed(requests()))
    assert cache.stats().entries == len(MIXED)
    again = keyed(requests())
    assert all(isinstance(r.encoded.real, DevicePool) for r in again if r.encoded)
    assert all(r.encoded.real.keys.device.type == device for r in again if r.encoded)
    assert_same(first, runner.score_batch(again), 1e-6)


def test_candidates_from_the_device_table_equal_the_stores_vectors(
    model_bundle: LoadedBundle,
) -> None:
    runner, _ = device_runner(model_bundle.directory, "cpu", "torch", "torch")
    requests = mixed_batch(model_bundle, seed=5)
    gathered = runner.score_batch(requests())
    uploaded = []
    for request in requests():
        request.candidate_ids = None
        uploaded.append(request)
    assert_same(gathered, runner.score_batch(uploaded), 0.0)


def test_the_device_holds_the_table_as_stored_when_the_host_widens_it(
    model_bundle: LoadedBundle,
) -> None:
    runner, bundle = device_runner(model_bundle.directory, "cpu", "torch", "torch")
    assert bundle.items.in_memory and bundle.items.vectors.dtype == np.float32
    stored = bundle.manifest.item_table.dtype
    assert stored == "float16" and str(runner._table.dtype) == f"torch.{stored}"
    np.testing.assert_array_equal(runner._table.numpy(), bundle.items.vectors.astype(stored))


def test_a_batch_of_requests_without_candidates(model_bundle: LoadedBundle) -> None:
    runner, _ = device_runner(model_bundle.directory, "cpu", "torch", "torch")
    requests = mixed_batch(model_bundle, [(0, 2, 1, True), (0, 0, 0, False)])
    results = runner.score_batch(requests())
    assert [len(r.scores) for r in results] == [0, 0]
    assert results[0].real_weights is not None and results[0].real_weights.shape == (0, 2)


def test_warm_up_scores_synthetic_batches(model_bundle: LoadedBundle) -> None:
    runner, _ = device_runner(model_bundle.directory, "cpu", "triton", "onnxruntime")
    runner.warm_up()


def test_the_host_path_encodes_each_user_alone_under_self_attention(
    model_bundle: LoadedBundle,
) -> None:
    """With causal self-attention in the user encoder, packing two users' behaviours into one
    sequence would let the second attend to the first's: each user gets their own row."""
    assert model_bundle.manifest.dimensions.user_layers > 0
    requests = mixed_batch(model_bundle, seed=7)
    batched = GraphRunner(model_bundle).score_batch(requests())
    alone = [GraphRunner(model_bundle).score_batch([r])[0] for r in requests()]
    assert_same(alone, batched, 1e-5)
