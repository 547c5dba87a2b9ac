"""A small, learnable dataset for the export and training tests: items belong to topics; each
user prefers a few topics, behaves mostly on them and clicks impressions of them far more often.
Semantic vectors are noisy topic centroids, so both the ID and the knowledge path carry the
signal. The last tenth of the catalogue launches after the split time: cold items the ID path
cannot know."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from model_export.train import TrainConfig
from offline.data.canonical import Behaviours, Catalogue, Dataset, Impressions
from service.contracts.manifest import TextEncoderInfo

T0 = 1_700_000_000
DAYS = 30
TOPICS = 12
SEMANTIC_DIM = 16
TEST_ENCODER = TextEncoderInfo(name="topic-centroids", dim=SEMANTIC_DIM, version="test")


def _catalogue(
    n_items: int, topic: npt.NDArray[np.int64], launch: npt.NDArray[np.int64]
) -> Catalogue:
    def text(prefix: str) -> npt.NDArray[np.str_]:
        return np.array([f"{prefix}{t}" for t in topic])

    return Catalogue(
        item_ids=np.array([f"i{n}" for n in range(n_items)]),
        category_paths=text("Home>Topic"),
        brands=text("brand"),
        price_bands=(topic % 5).astype(np.int32),
        prices=np.full(n_items, 9.99, dtype=np.float32),
        titles=text("item of topic "),
        materials=text("material"),
        styles=text("style"),
        audiences=text("audience"),
        launch_ts=launch,
    )


def learnable_dataset(
    n_items: int = 600, n_users: int = 200, n_requests: int = 4000, seed: int = 0
) -> tuple[Dataset, npt.NDArray[np.float32]]:
    """A dataset whose clicks follow topic affinity, and its semantic vectors."""
    rng = np.random.default_rng(seed)
    end = T0 + DAYS * 86_400
    split = T0 + int(0.8 * DAYS * 86_400)
    topic = rng.integers(TOPICS, size=n_items)
    cold = np.arange(n_items) >= int(0.9 * n_items)
    launch = np.where(cold, split, T0).astype(np.int64)
    likes = np.stack([rng.choice(TOPICS, size=3, replace=False) for _ in range(n_users)])
    by_topic = [np.flatnonzero((topic == t) & ~cold) for t in range(TOPICS)]

    events_per_user = 25
    beh_user = np.repeat(np.arange(n_users), events_per_user)
    liked = likes[beh_user, rng.integers(3, size=len(beh_user))]
    beh_item = np.array([rng.choice(by_topic[t]) for t in liked])
    noise = rng.random(len(beh_item)) < 0.15
    beh_item[noise] = rng.integers(int(0.9 * n_items), size=int(noise.sum()))
    beh_ts = rng.integers(T0, end, size=len(beh_user))
    order = np.lexsort((beh_ts, beh_user))

    per_request = 8
    req_user = rng.integers(n_users, size=n_requests)
    req_ts = np.sort(rng.integers(T0 + 86_400, end, size=n_requests))
    imp_user = np.repeat(req_user, per_request)
    imp_item = rng.integers(n_items, size=len(imp_user))
    launched = ~cold[imp_item] | (np.repeat(req_ts, per_request) >= split)
    imp_item = np.where(launched, imp_item, imp_item % int(0.9 * n_items))
    affinity = (likes[imp_user] == topic[imp_item][:, None]).any(axis=1)
    clicked = rng.random(len(imp_item)) < np.where(affinity, 0.45, 0.05)

    dataset = Dataset(
        catalogue=_catalogue(n_items, topic, launch),
        user_ids=np.array([f"u{n}" for n in range(n_users)]),
        impressions=Impressions(
            request_ids=np.repeat(np.arange(n_requests, dtype=np.int64), per_request),
            user_idx=imp_user.astype(np.int32),
            item_idx=imp_item.astype(np.int32),
            ts=np.repeat(req_ts, per_request).astype(np.int64),
            clicked=clicked.astype(np.int8),
        ),
        behaviours=Behaviours(
            user_idx=beh_user[order].astype(np.int32),
            item_idx=beh_item[order].astype(np.int32),
            ts=beh_ts[order].astype(np.int64),
            event=rng.choice([1, 2, 3], p=[0.8, 0.15, 0.05], size=len(order)).astype(np.int8),
        ),
        split_ts=split,
        meta={"source": "learnable-test"},
    )
    centroids = rng.normal(size=(TOPICS, SEMANTIC_DIM))
    semantic = centroids[topic] + 0.3 * rng.normal(size=(n_items, SEMANTIC_DIM))
    return dataset, semantic.astype(np.float32)


FAST_CONFIG = TrainConfig(
    epochs=4,
    batch_size=128,
    max_seq_len=20,
    item_dim=32,
    heads=4,
    hidden_dim=64,
    threads=1,
    progress=False,
)
