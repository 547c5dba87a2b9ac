"""API keys: the ``X-API-Key`` values a route accepts, from settings and from a mounted file.

A key file holds one key per line; blank lines and lines starting with ``#`` are skipped. It is
read at start (a missing or unreadable file stops the service) and again whenever its size,
modification time or inode changes, checked at most once a second, so a rotated Kubernetes
secret takes effect without a restart. If the file becomes unreadable later, the last keys read
stay in force and a warning is logged. Keys are kept only as SHA-256 digests and compared with
:func:`hmac.compare_digest` against every accepted key, so neither the time taken nor a log line
tells a caller anything about a key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from service.errors import Unauthorized

log = logging.getLogger(__name__)

#: The request header that carries a key.
API_KEY_HEADER = "X-API-Key"
#: Seconds between two looks at a key file.
RECHECK_INTERVAL_S = 1.0


class KeyFileError(Exception):
    """A key file cannot be read."""


def split_keys(value: SecretStr | None) -> list[str]:
    """The keys of a comma-separated setting."""
    if value is None:
        return []
    return [key.strip() for key in value.get_secret_value().split(",") if key.strip()]


def read_key_file(path: Path) -> list[str]:
    """The keys in ``path``, one per line; raises :class:`KeyFileError` if it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise KeyFileError(f"cannot read the API key file {path}: {error}") from error
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


def _file_version(path: Path) -> tuple[int, int, int]:
    stat = os.stat(path)
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


class ApiKeys:
    """The keys one group of routes accepts; ``enabled`` is false when none is configured."""

    def __init__(self, keys: Iterable[str] = (), path: Path | None = None) -> None:
        self._static = [_digest(key) for key in keys if key]
        self._path = path
        self._from_file: list[bytes] = []
        self._file_version: tuple[int, int, int] | None = None
        self._checked_at = 0.0
        if path is not None:
            self._file_version = _file_version_or_fail(path)
            self._from_file = [_digest(key) for key in read_key_file(path)]
            self._checked_at = time.monotonic()

    @property
    def enabled(self) -> bool:
        return bool(self._static) or self._path is not None

    def accepts(self, presented: str | None) -> bool:
        """Whether ``presented`` is one of the keys; compares against every key, always."""
        return self.match(presented) is not None

    def match(self, presented: str | None) -> bytes | None:
        """The digest of the key ``presented`` is, ``None`` if it is none of them; compares
        against every key, always. The digest names the caller for per-key limits."""
        if presented is None:
            return None
        self._reload_if_changed()
        candidate = _digest(presented)
        matched = None
        for key in (*self._static, *self._from_file):
            if hmac.compare_digest(candidate, key):
                matched = key
        return matched

    def _reload_if_changed(self) -> None:
        if self._path is None or time.monotonic() - self._checked_at < RECHECK_INTERVAL_S:
            return
        self._checked_at = time.monotonic()
        try:
            version = _file_version(self._path)
            if version == self._file_version:
                return
            keys = read_key_file(self._path)
        except (OSError, KeyFileError) as error:
            log.warning("keeping the previous API keys: %s", error)
            return
        self._file_version = version
        self._from_file = [_digest(key) for key in keys]
        log.info("API key file %s re-read: %d keys", self._path, len(keys))


def _file_version_or_fail(path: Path) -> tuple[int, int, int]:
    try:
        return _file_version(path)
    except OSError as error:
        raise KeyFileError(f"cannot read the API key file {path}: {error}") from error


def rank_caller(keys: ApiKeys, presented: str | None) -> bytes | None:
    """Who a ``/v1/rank`` request with key ``presented`` counts against: the key's digest, or
    ``None`` where the deployment sets no rank keys; raises :class:`Unauthorized`."""
    if not keys.enabled:
        return None
    if not presented:
        raise Unauthorized("missing X-API-Key header: this deployment requires an API key")
    matched = keys.match(presented)
    if matched is None:
        raise Unauthorized("X-API-Key not accepted: check the key your deployment issued")
    return matched


@dataclass(frozen=True)
class ServiceKeys:
    """The keys of ``/v1/rank`` (optional) and of the admin endpoints (required to use them)."""

    rank: ApiKeys
    admin: ApiKeys
