"""Stores of user sequences, generated behaviours and item vectors, behind one interface."""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.stores.base import (
    FetchQuery,
    FetchResult,
    GeneratedBehaviours,
    RankingStore,
    UserSequence,
)
from service.stores.config import EmbeddedStoreConfig, RedisStoreConfig, StoreConfig
from service.stores.event_log import AppendResult, NewEvents

if TYPE_CHECKING:
    from service.bundles.loaded import LoadedBundle

__all__ = [
    "AppendResult",
    "EmbeddedStoreConfig",
    "FetchQuery",
    "FetchResult",
    "GeneratedBehaviours",
    "NewEvents",
    "RankingStore",
    "RedisStoreConfig",
    "StoreConfig",
    "UserSequence",
    "open_store",
]


def open_store(config: StoreConfig, bundle: LoadedBundle) -> RankingStore:
    """The backend ``config`` names, bound to the served bundle."""
    if isinstance(config, RedisStoreConfig):
        from service.stores.redis import RedisStore

        return RedisStore.open(config, bundle)
    from service.stores.embedded import EmbeddedStore

    return EmbeddedStore.open(config, bundle)
