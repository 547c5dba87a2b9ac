"""Service settings: the one place that reads the environment (prefix ``REASEQ_``)."""

from __future__ import annotations

import re
from contextlib import suppress
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, RedisDsn, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from kernels.target_attention.cpu import ONNX_CHUNK_BYTES
from service.contracts.bundle_root import current_pointer, read_current, recorded_user_snapshot
from service.contracts.manifest import confined_bundle_dir
from service.errors import BundleNotFoundError
from service.http.api_keys import ApiKeys, KeyFileError, ServiceKeys, read_key_file, split_keys
from service.http.guard_settings import GuardSettings
from service.ranking.limits import MAX_CANDIDATES, MAX_ID_LENGTH, MAX_TIMEOUT_MS, RequestLimits
from service.stores.config import (
    DEMO_USERS_PATH,
    EmbeddedStoreConfig,
    RedisSettingUrl,
    RedisStoreConfig,
    StoreConfig,
)
from service.threads import (
    MAX_DEFAULT_WORKERS,
    MODEL_THREAD_NICENESS,
    default_workers,
    usable_cores,
)
from service.worker_state import EVENTS_FILE


class Settings(GuardSettings):
    """Every knob of the ranking service; each field reads ``REASEQ_<FIELD NAME>`` (those of the
    HTTP guards are in :mod:`service.http.guard_settings`)."""

    model_config = SettingsConfigDict(env_prefix="REASEQ_", extra="ignore", populate_by_name=True)

    host: str = Field(default="127.0.0.1", description="Interface the HTTP server binds.")
    port: int = Field(default=8000, ge=1, le=65535)
    bundle_root: Path = Field(default=Path("bundles"), description="Folder of bundle versions.")
    bundle_version: str | None = Field(
        default=None, description="Bundle to serve; default: the version in <bundle_root>/CURRENT."
    )
    bundle_watch_interval_s: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        description="With the Redis store, how often to read the active bundle version from "
        "Redis and activate it when it changed; 0 = never; off when REASEQ_BUNDLE_VERSION is set.",
    )
    bundle_drain_timeout_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="After a bundle swap, the longest the old bundle waits for its in-flight "
        "requests before it is closed.",
    )
    store: Literal["embedded", "redis"] = Field(
        default="embedded", description="Where user data and item vectors come from."
    )
    redis_url: RedisSettingUrl = Field(
        default=RedisDsn("redis://127.0.0.1:6379/0"),
        description="Redis of REASEQ_STORE=redis: redis://[[user]:password@]host[:port][/db], "
        "rediss:// for TLS.",
    )
    redis_timeout_ms: int = Field(
        default=50, ge=1, le=60_000, description="Budget of one store round trip."
    )
    redis_max_connections: int = Field(default=64, ge=1)
    redis_cluster: bool = Field(
        default=False,
        description="REASEQ_REDIS_URL names a node of a Redis Cluster: discover the others.",
    )
    store_breaker_failures: int = Field(
        default=5,
        ge=0,
        description="Store failures or timeouts in a row that open its circuit; 0 = never.",
    )
    store_breaker_cool_down_ms: int = Field(
        default=5000,
        ge=1,
        le=600_000,
        description="How long an open circuit fails fast before one call probes the store.",
    )
    event_id_window: int = Field(
        default=1024,
        ge=1,
        description="Recent event IDs kept per user, so a replayed event is not appended twice.",
    )
    embedded_users_path: Path | None = Field(
        default=None,
        description="User snapshot of the embedded store; unset = the one published with the "
        "served bundle (named by <bundle_root>/<version>.users, which `reaseq build`, `demo` "
        "and `publish` write), else var/demo/users.npz.",
    )
    max_candidates: int = Field(
        default=2000,
        ge=1,
        le=MAX_CANDIDATES,
        description=f"Most candidates per request (and largest top_k); at most {MAX_CANDIDATES}.",
    )
    max_recent_events: int = Field(default=256, ge=0, description="Most recent_events per request.")
    default_top_k: int | None = Field(
        default=None, ge=1, description="top_k when a request omits it; unset = return all."
    )
    graph_mode: Literal["split", "full"] = Field(
        default="split",
        description="split: encoders, attention kernel, scorer, micro-batched; full: the "
        "single full graph per request (host path only).",
    )
    onnx_intra_op_threads: int = Field(
        default=1, ge=0, description="onnxruntime intra-op threads per graph; 0 = its default."
    )
    device: Literal["cpu", "cuda"] = Field(
        default="cpu",
        description="Where batches are scored. cpu: onnxruntime on the host. cuda: the device "
        "path (item table and cached user keys/values on the GPU, the graphs on ONNX Runtime's "
        "CUDA provider, or in PyTorch from the bundle's weights without onnxruntime-gpu, "
        "attention in Triton); needs the gpu image.",
    )
    device_index: int = Field(default=0, ge=0, description="The GPU of REASEQ_DEVICE=cuda.")
    attention_backend: Literal["auto", "onnx_cpu", "numpy", "torch", "triton"] = Field(
        default="auto",
        description="Target attention. onnx_cpu, numpy: the host path (REASEQ_DEVICE=cpu); "
        "torch, triton: the device path on REASEQ_DEVICE (with cpu: PyTorch tensors on the "
        "CPU, Triton only under TRITON_INTERPRET=1, for tests); auto: onnx_cpu on cpu, triton "
        "on cuda.",
    )
    device_graphs: Literal["auto", "onnxruntime", "torch"] = Field(
        default="auto",
        description="On the device path, what runs the encoders and the scorer: onnxruntime "
        "(IOBinding on the device's buffers) or torch (the bundle's module weights); auto: "
        "onnxruntime when its first provider is the device's, else torch.",
    )
    onnx_providers: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="onnxruntime execution providers in order of preference, comma-separated; "
        "empty: CPUExecutionProvider on cpu, CUDAExecutionProvider then CPUExecutionProvider "
        "on cuda. One this onnxruntime build lacks is skipped, with a warning.",
    )
    default_timeout_ms: int | None = Field(
        default=2000,
        ge=1,
        le=60_000,
        description="Budget of a rank request that names no timeout_ms; unset = no deadline.",
    )
    batch_max_candidates: int = Field(
        default=4096,
        ge=1,
        description="Most candidates the micro-batcher scores in one batch (a larger request "
        "goes alone).",
    )
    batch_max_wait_ms: float = Field(
        default=1.0,
        ge=0,
        le=50,
        description="Longest a free scoring thread waits for companions; it waits only while "
        "requests arrive closer together than this.",
    )
    scoring_threads: int = Field(
        default=1, ge=1, le=64, description="Scoring threads per worker (one batch each)."
    )
    attention_threads: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Threads sharing a batch's scoring (a batch with at least 2^19 "
        "candidate-behaviour pairs is cut into one share of its candidates per thread, each "
        "through the candidate encoder, the attention and the scorer); unset = the usable "
        "cores (CPU affinity and cgroup quota), in every worker: a core the other workers "
        "leave idle helps.",
    )
    pin_workers: bool = Field(
        default=False,
        description="With several workers and no more of them than usable cores, each keeps "
        "its event loop and scoring threads on a core of its own (one request's steps stay in "
        "one core's caches); the threads that share a large request's attention still use "
        "every core. false = the kernel places every thread.",
    )
    model_thread_niceness: int = Field(
        default=MODEL_THREAD_NICENESS,
        ge=0,
        le=19,
        description="How far below the event loop's priority the scoring and attention threads "
        "run (Linux nice values, per thread): the event loop's short steps (reading a request, "
        "fetching, answering) gate every request and take a core as soon as they need one, "
        "while a model thread yields it for a moment. 0 = the same priority.",
    )
    attention_chunk_kb: int = Field(
        default=ONNX_CHUNK_BYTES // 1024,
        ge=1,
        le=1 << 20,
        description="Most KiB of attention logits per onnxruntime call on the host path: a "
        "large request's candidates are scored in chunks this big, which stay in a core's "
        "cache (python -m bench.cpu_attention times the sizes on a machine).",
    )
    item_table_float32_mb: float = Field(
        default=256.0,
        ge=0,
        description="An item table that takes at most this many MiB as float32 is copied into "
        "each worker's memory as float32 (a request's rows then need no conversion); a larger "
        "one is read through the memory-mapped file at the bundle's dtype. 0 = always mapped.",
    )
    user_cache_mb: float = Field(
        default=256.0,
        ge=0,
        description="Memory per worker for the per-user cache of encoded behaviours; 0 = off.",
    )
    max_id_length: int = Field(
        default=MAX_ID_LENGTH,
        ge=1,
        le=MAX_ID_LENGTH,
        description="Longest user or item ID, in characters (at most the schema's 256).",
    )
    id_pattern: str | None = Field(
        default=None,
        description="Regular expression every user and item ID must match in full; unset = "
        "any printable text.",
    )
    max_timeout_ms: int = Field(
        default=MAX_TIMEOUT_MS, ge=1, le=MAX_TIMEOUT_MS, description="Largest timeout_ms."
    )
    cors_allow_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser, comma-separated; "
        "empty = no CORS headers.",
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    graceful_shutdown_s: int | None = Field(
        default=None,
        ge=1,
        le=3600,
        description="After SIGTERM, the longest wait for in-flight requests; unset = no limit.",
    )
    log_format: Literal["json", "text"] = Field(
        default="json", description="json: one JSON object per line; text: for a terminal."
    )
    access_log: bool = Field(default=True, description="One log line per HTTP request.")
    workers: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="uvicorn worker processes on one port; unset = one per usable core (at most "
        f"{MAX_DEFAULT_WORKERS}), but one on the device path. More than one serves more light "
        "requests (each worker's interpreter lock saturates before the cores do) and holds "
        "heavy requests' tail less well (the kernel spreads connections, not load).",
    )
    metrics_multiproc_dir: Path | None = Field(
        default=None,
        # The variable prometheus-client itself reads, so both always agree.
        validation_alias="PROMETHEUS_MULTIPROC_DIR",
        description="PROMETHEUS_MULTIPROC_DIR: where workers share their metric values.",
    )
    latency_objective_ms: float = Field(
        default=50.0, gt=0, le=10_000, description="Latency objective of /v1/rank (a bucket edge)."
    )
    tracing_enabled: bool = Field(
        default=False, description="OpenTelemetry spans per request and stage (tracing extra)."
    )
    tracing_exporter: Literal["otlp", "console"] = Field(
        default="otlp", description="otlp: to OTEL_EXPORTER_OTLP_ENDPOINT; console: stdout."
    )
    tracing_service_name: str = Field(default="reaseq-ranking", description="service.name.")
    prediction_log: Literal["experiment", "always", "off"] = Field(
        default="experiment",
        description="Answers written to the prediction log: experiment (while an experiment "
        "runs), always, off (no log; POST /v1/outcomes answers 409). Outcomes: unless off.",
    )
    prediction_log_sink: Literal["auto", "file", "redis"] = Field(
        default="auto",
        description="auto: the Redis stream with REASEQ_STORE=redis, else files; file: JSON "
        "Lines in REASEQ_PREDICTION_LOG_DIR; redis: the stream (needs REASEQ_STORE=redis).",
    )
    prediction_log_dir: Path = Field(
        default=Path("var/predictions"), description="Folder of the prediction log's files."
    )
    prediction_log_max_bytes: int = Field(
        default=64 * 2**20, ge=1024, description="Size past which a log file is rotated."
    )
    prediction_log_max_files: int = Field(
        default=16, ge=1, description="Log files a worker keeps (of its own; oldest removed)."
    )
    prediction_log_queue: int = Field(
        default=10_000, ge=1, description="Records waiting to be written; past it, dropped."
    )
    prediction_stream_maxlen: int = Field(
        default=1_000_000, ge=1, description="Approximate length the Redis stream is cut to."
    )
    experiment_file: Path | None = Field(
        default=None,
        description="JSON experiment configuration (the body of PUT /v1/admin/experiment) "
        "applied at start-up and whenever it changes to a higher version; unset = admin only.",
    )
    experiment_watch_interval_s: float = Field(
        default=5.0, ge=0, le=3600, description="How often to re-read it; 0 = at start-up only."
    )
    worker_state_dir: Path | None = Field(
        default=None,
        description="The folder through which the workers of one service share what the admin "
        "endpoints change (the experiment; on the embedded store also appended events and the "
        "activated bundle); reaseq serve makes one of its own when it starts several workers, "
        "so leave it unset.",
    )
    shadow_queue_size: int = Field(
        default=64, ge=1, le=100_000, description="Shadow scorings waiting; more are dropped."
    )

    @field_validator("id_pattern")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"not a regular expression: {error}") from error
        return pattern

    @field_validator("cors_allow_origins", "onnx_providers", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @model_validator(mode="after")
    def _device_fits(self) -> Settings:
        if self.device == "cuda" and self.attention_backend in ("onnx_cpu", "numpy"):
            raise ValueError(
                f"REASEQ_ATTENTION_BACKEND={self.attention_backend} runs on the host: with "
                "REASEQ_DEVICE=cuda choose triton, torch or auto"
            )
        if self.on_device and self.graph_mode == "full":
            raise ValueError(
                "REASEQ_GRAPH_MODE=full runs the one full graph on the host path only: use split "
                "with REASEQ_DEVICE=cuda or a torch/triton attention backend"
            )
        return self

    @model_validator(mode="after")
    def _prediction_log_fits(self) -> Settings:
        if self.prediction_log_sink == "redis" and self.store != "redis":
            raise ValueError(
                "REASEQ_PREDICTION_LOG_SINK=redis writes to the store's Redis: set "
                "REASEQ_STORE=redis, or choose file or auto"
            )
        return self

    @property
    def worker_processes(self) -> int:
        """The worker processes to start: ``REASEQ_WORKERS``, else :func:`default_workers`."""
        if self.workers is not None:
            return self.workers
        return default_workers(usable_cores(), single=self.on_device)

    @property
    def on_device(self) -> bool:
        """Whether batches are scored on the device path (tensors), not the host path."""
        return self.device == "cuda" or self.attention_backend in ("torch", "triton")

    def secret_values(self) -> list[str]:
        """Values that must never reach a log line: every API key, from settings and files."""
        secrets = [
            value.get_secret_value()
            for value in (self.admin_api_key, self.api_keys)
            if value is not None
        ]
        secrets += split_keys(self.admin_api_key) + split_keys(self.api_keys)
        for path in (self.admin_api_keys_file, self.api_keys_file):
            if path is not None:
                # An unreadable file stops the service with its own message, in create_app.
                with suppress(KeyFileError):
                    secrets += read_key_file(path)
        return [s for s in secrets if s]

    def request_limits(self) -> RequestLimits:
        """The limits a request is checked against, past what the API schema enforces, and the
        defaults it takes."""
        pattern = re.compile(self.id_pattern) if self.id_pattern is not None else None
        return RequestLimits(
            max_candidates=self.max_candidates,
            max_recent_events=self.max_recent_events,
            max_id_length=self.max_id_length,
            id_pattern=pattern,
            max_timeout_ms=self.max_timeout_ms,
            default_top_k=self.default_top_k,
            default_timeout_ms=self.default_timeout_ms,
        )

    def service_keys(self) -> ServiceKeys:
        """The API keys; raises :class:`service.http.api_keys.KeyFileError` for an unreadable
        file."""
        return ServiceKeys(
            rank=ApiKeys(split_keys(self.api_keys), self.api_keys_file),
            admin=ApiKeys(split_keys(self.admin_api_key), self.admin_api_keys_file),
        )

    def resolve_bundle_dir(self) -> Path:
        """The directory of the bundle to serve."""
        version = self.bundle_version
        if version is None:
            current = current_pointer(self.bundle_root)
            if not current.is_file():
                raise BundleNotFoundError(
                    "no bundle version: set REASEQ_BUNDLE_VERSION or write the version to "
                    f"{current}"
                )
            version = read_current(self.bundle_root)
        bundle_dir = self.bundle_root / version
        if not bundle_dir.is_dir():
            raise BundleNotFoundError(f"bundle {version!r} not found under {self.bundle_root}")
        return confined_bundle_dir(self.bundle_root, version)

    def store_config(self, bundle_dir: Path | None = None) -> StoreConfig:
        """The configuration of the chosen store backend for the bundle in ``bundle_dir``."""
        if self.store == "redis":
            return RedisStoreConfig(
                type="redis",
                url=str(self.redis_url),
                timeout_ms=self.redis_timeout_ms,
                max_connections=self.redis_max_connections,
                cluster=self.redis_cluster,
                breaker_failures=self.store_breaker_failures,
                breaker_cool_down_ms=self.store_breaker_cool_down_ms,
                event_id_window=self.event_id_window,
            )
        return EmbeddedStoreConfig(
            type="embedded",
            users_path=self.users_snapshot(bundle_dir),
            event_id_window=self.event_id_window,
            journal_path=(
                None if self.worker_state_dir is None else self.worker_state_dir / EVENTS_FILE
            ),
        )

    def users_snapshot(self, bundle_dir: Path | None) -> Path:
        """The embedded store's user snapshot: the one set, else the one recorded for the bundle
        in ``bundle_dir``, else the demo's."""
        if self.embedded_users_path is not None:
            return self.embedded_users_path
        recorded = recorded_user_snapshot(bundle_dir) if bundle_dir is not None else None
        return recorded or DEMO_USERS_PATH


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
