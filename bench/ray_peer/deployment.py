"""The Ray Serve application: one deployment with a FastAPI ingress, batching with ``serve.batch``.

Written as Ray Serve's guides show it: ``@serve.deployment`` over ``@serve.ingress(app)``, the
model loaded in ``__init__``, a ``@serve.batch`` method that runs a list of requests at once, its
batch size and wait tuned at run time through ``user_config`` and ``reconfigure``, and
``max_ongoing_requests`` at least the batch size so that batches can fill.
"""

# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations as types.
import asyncio
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from ray import serve
from ray.serve import Application

from bench.ray_peer import RayPeerSettings
from bench.ray_peer.ranker import FloatArray, FullGraphRanker, RankInputs, top_items

app = FastAPI(title="ray serve peer")


class RankBody(BaseModel):
    user_id: str
    candidates: list[str]
    top_k: int | None = None


class ScoredItem(BaseModel):
    item_id: str
    score: float


class RankResponse(BaseModel):
    items: list[ScoredItem]


#: Seconds a stopping replica waits for requests in flight: the bench stops the peer after its
#: load, with nothing in flight, and gives it 15 s to exit.
_GRACEFUL_SHUTDOWN_S = 2.0


@serve.deployment(
    ray_actor_options={"num_cpus": 1},
    graceful_shutdown_wait_loop_s=0.5,
    graceful_shutdown_timeout_s=_GRACEFUL_SHUTDOWN_S,
)
@serve.ingress(app)
class Ranker:
    def __init__(self, bundle_dir: str, users_path: str) -> None:
        self._ranker = FullGraphRanker(Path(bundle_dir), Path(users_path))

    def reconfigure(self, config: dict[str, Any]) -> None:
        # (Ray's annotations give the batched method its undecorated type, without these.)
        self.score.set_max_batch_size(int(config["max_batch_size"]))  # type: ignore[attr-defined]
        self.score.set_batch_wait_timeout_s(  # type: ignore[attr-defined]
            float(config["batch_wait_ms"]) / 1000.0
        )

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.005)
    async def score(self, batch: list[RankInputs]) -> list[FloatArray]:
        # onnxruntime releases the GIL: off the event loop, the replica parses the requests of
        # the next batch while this one runs.
        return await asyncio.to_thread(self._ranker.score_batch, batch)

    @app.get("/readyz")
    def ready(self) -> dict[str, str]:
        return {"status": "ready"}

    # The response model, not a return type: FastAPI validates and writes the plain dictionary
    # as JSON in Pydantic's core, without building a model object per item.
    @app.post("/v1/rank", response_model=RankResponse)
    async def rank(self, body: RankBody) -> dict[str, list[dict[str, Any]]]:
        if not body.candidates:
            return {"items": []}
        inputs = self._ranker.inputs(body.user_id, body.candidates, int(time.time()))
        scores = await self.score(inputs)
        return {"items": top_items(body.candidates, scores, body.top_k)}


def ranker_app(bundle_dir: Path, users_path: Path, settings: RayPeerSettings) -> Application:
    """The application, bound to the bundle and the users, with its batching and replicas."""
    # (Ray's annotations keep the class's own type for the Deployment ``serve.deployment`` makes.)
    deployment = Ranker.options(  # type: ignore[attr-defined]
        num_replicas=settings.replicas,
        max_ongoing_requests=2 * settings.max_batch_size,
        user_config={
            "max_batch_size": settings.max_batch_size,
            "batch_wait_ms": settings.batch_wait_ms,
        },
    )
    return deployment.bind(str(bundle_dir), str(users_path))
