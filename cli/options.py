"""Options and defaults that several ``reaseq`` commands share: the folders of a demo, the store
to publish to, the text encoder, the training threads.

The enums mirror the offline ones (same values), so that importing the command for
``reaseq serve`` does not import the offline side.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from offline.encode.choice import EncoderChoice
    from service.stores.config import StoreConfig

DEFAULT_BUNDLES = Path("bundles")
#: Where ``reaseq demo`` writes its data, generator, run and user snapshot.
DEFAULT_DEMO_DIR = Path("var/demo")
DEFAULT_EPOCHS = 2  # the training default; enough for the demo data to converge
DEMO_GENERATED = 16  # K of the demo bundle: generated behaviours per user


class StoreKind(StrEnum):
    """Where users' sequences are published: the embedded snapshot or Redis."""

    embedded = "embedded"
    redis = "redis"


def store_config(
    kind: StoreKind, users_path: Path, redis_url: str, redis_cluster: bool
) -> StoreConfig:
    """The store a command writes to: the embedded snapshot at ``users_path``, or Redis."""
    from service.stores.config import EmbeddedStoreConfig, RedisStoreConfig

    if kind is StoreKind.embedded:
        return EmbeddedStoreConfig(users_path=users_path)
    return RedisStoreConfig(url=redis_url, cluster=redis_cluster)


class Size(StrEnum):
    """The synthetic generator's presets (offline.data.synthetic.SyntheticConfig.preset)."""

    tiny = "tiny"
    small = "small"
    demo = "demo"
    large = "large"


class EncoderName(StrEnum):
    tfidf_svd = "tfidf-svd"
    sentence_transformers = "sentence-transformers"
    openai_embeddings = "openai-embeddings"


class Fusion(StrEnum):
    sum = "sum"
    gate = "gate"


class Reduction(StrEnum):
    """How an encoder wider than --dim is brought to it."""

    truncate = "truncate"
    project = "project"


def redis_url_option(url: str) -> str:
    """Check ``--redis-url`` before any work is done (a bare host:port is the usual mistake)."""
    from service.stores.config import check_redis_url

    try:
        return check_redis_url(url)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


def encoder_choice(
    name: EncoderName, dim: int, seed: int, model_dir: Path | None, reduce: Reduction
) -> EncoderChoice:
    """The text encoder the options name (built by the caller)."""
    from offline.encode.choice import EncoderChoice
    from offline.encode.choice import EncoderName as Encoders

    return EncoderChoice(Encoders(name.value), dim, seed, model_dir, reduce.value)


BundlesOpt = Annotated[Path, typer.Option(help="Root folder of the bundles.")]
ActivateOpt = Annotated[bool, typer.Option(help="Point bundles/CURRENT at it.")]
RedisUrlOpt = Annotated[
    str, typer.Option(envvar="REASEQ_REDIS_URL", callback=redis_url_option, help="Redis URL.")
]
RedisClusterOpt = Annotated[
    bool, typer.Option(envvar="REASEQ_REDIS_CLUSTER", help="The URL names a cluster node.")
]
EncoderOpt = Annotated[EncoderName, typer.Option(help="Text encoder.")]
DimOpt = Annotated[int, typer.Option(min=1, help="Width of the semantic vectors.")]
ModelDirOpt = Annotated[
    Path | None, typer.Option(help="Local model folder (sentence-transformers).")
]
ReduceOpt = Annotated[Reduction, typer.Option(help="Truncate or project to the width.")]
ThreadsOpt = Annotated[
    int | None, typer.Option(min=1, help="Torch threads while training (default: one per core).")
]
FusionOpt = Annotated[
    Fusion, typer.Option(help="How ID and knowledge vectors combine (gate: per count bucket).")
]
UserLayersOpt = Annotated[
    int, typer.Option(min=0, max=4, help="Self-attention layers of the user encoder.")
]
