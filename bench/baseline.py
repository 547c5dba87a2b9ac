"""The naive baseline: the bench bundle's PyTorch ranker served per request in eager mode.

What a team gets from general-purpose tools in an afternoon: a plain FastAPI endpoint with the
same request body, Python dictionary lookups from item IDs to rows, the user's behaviours from the
same snapshot, and one eager ``forward`` per request (no batching, no caches, PyTorch's default
threads). Run as ``python -m bench.baseline``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from model_export.checkpoint import load_ranker
from service.contracts.features import time_gap_buckets
from service.stores.snapshot import UserSnapshot


class RankBody(BaseModel):
    user_id: str
    candidates: list[str]
    top_k: int | None = None


def create_baseline_app(model_dir: Path, bundle_dir: Path, users_path: Path) -> FastAPI:
    model = load_ranker(model_dir).model.eval()
    item_ids = np.load(bundle_dir / "item_ids.npy").tolist()
    rows = {item: row for row, item in enumerate(item_ids)}
    snapshot = UserSnapshot.load(users_path)
    app = FastAPI(title="naive baseline")

    @app.get("/readyz")
    def ready() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/v1/rank")
    def rank(body: RankBody) -> dict[str, object]:
        sequence = snapshot.sequence(body.user_id)
        generated = snapshot.generated(body.user_id)
        history = sequence.item_ids if sequence is not None else []
        beyond = generated.item_ids if generated is not None else []
        candidates = torch.tensor([[rows.get(c, 0) for c in body.candidates]])
        seq = torch.tensor([[rows.get(i, 0) for i in history] or [0]])
        events = torch.tensor([sequence.events.tolist() if sequence is not None else [0]])
        gaps = time_gap_buckets(
            int(time.time()), sequence.timestamps if sequence is not None else np.zeros(1, int)
        )
        gen = torch.tensor([[rows.get(i, 0) for i in beyond] or [0]])
        with torch.no_grad():
            logits = model(
                candidates,
                seq,
                events.long(),
                torch.from_numpy(gaps)[None],
                gen,
                torch.tensor([[1.0] * len(history) or [0.0]]),
                torch.tensor([[1.0] * len(beyond) or [0.0]]),
            )
        scores = torch.sigmoid(logits)[0].tolist()
        order = sorted(range(len(scores)), key=lambda r: -scores[r])[: body.top_k]
        return {"items": [{"item_id": body.candidates[r], "score": scores[r]} for r in order]}

    return app


def main(
    model_dir: Annotated[Path, typer.Option()],
    bundle_dir: Annotated[Path, typer.Option()],
    users: Annotated[Path, typer.Option()],
    port: Annotated[int, typer.Option()] = 8100,
) -> None:
    app = create_baseline_app(model_dir, bundle_dir, users)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    typer.run(main)
