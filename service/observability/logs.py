"""Structured logs: one JSON object per line, carrying the request ID (and, while a span is
current, the trace and span IDs), with secrets redacted.

Log collectors (Loki, Elasticsearch, Cloud Logging) index JSON fields without a parser per
service, and a request ID on every line ties an access-log entry to the warnings the same request
raised; the trace ID ties it to the request's trace. Secrets are scrubbed in the formatter, the
last step before a line leaves the process, so a library that logs a Redis URL or an exception
quoting one cannot leak the password.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from service.observability.tracing import current_span_ids

#: The request being served by this task (and the threads it hands work to); "-" outside one.
current_request_id: ContextVar[str] = ContextVar("request_id", default="-")
#: The experiment and arm answering a request, with that request's ID: every later line of
#: the request (its access log line included) carries them. A value an earlier request of the
#: same task left behind names another request ID, and is ignored.
current_assignment: ContextVar[tuple[str, str, str] | None] = ContextVar("assignment", default=None)

REQUEST_ID_HEADER = "x-request-id"
#: A caller's ID is kept when it is short printable ASCII without spaces; anything else is
#: replaced, so that an ID can never smuggle a line break or a megabyte into the logs.
REQUEST_ID_PATTERN = r"^[\x21-\x7e]{1,128}$"
_VALID_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
#: ``scheme://user:password@host``: the password of any URL in a message.
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@]*:)[^\s@/]+@")
REDACTED = "***"

#: Attributes every ``LogRecord`` has; anything else was passed with ``extra=`` and is a field.
_RECORD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName", "color_message"}  # uvicorn's ANSI copy of the message
)


def request_id_from(header_value: str | None) -> str:
    """The caller's ``X-Request-ID`` when it is a sane token, else a fresh one."""
    if header_value is not None and _VALID_REQUEST_ID.match(header_value):
        return header_value
    # 128 random bits as 32 hex digits, as uuid4().hex gives, without building a UUID.
    return os.urandom(16).hex()


def tag_request(experiment: str, arm: str) -> None:
    """Log lines of the current request from here on carry ``experiment`` and ``arm``."""
    current_assignment.set((current_request_id.get(), experiment, arm))


def _assignment(request_id: str) -> tuple[str, str] | None:
    assignment = current_assignment.get()
    if assignment is None or assignment[0] != request_id:
        return None
    return assignment[1], assignment[2]


def redact_url_passwords(text: str) -> str:
    """``redis://user:secret@host`` becomes ``redis://user:***@host``."""
    return _URL_PASSWORD.sub(lambda match: match.group("head") + REDACTED + "@", text)


class SecretRedactor:
    """Removes known secret values and URL passwords from text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so that a secret containing another is removed whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return redact_url_passwords(text)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "request_id", ...extra fields}`` per line, with
    ``trace_id`` and ``span_id`` while a span is current, and ``experiment`` and ``arm`` once an
    experiment's arm answers the request.

    The span is read when the line is formatted: the handlers write in the thread that logs, so
    that is the span of the code that logged.
    """

    def __init__(self, redactor: SecretRedactor | None = None) -> None:
        super().__init__()
        self._redact = redactor or SecretRedactor()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id.get(),
        }
        span = current_span_ids()
        if span is not None:
            entry["trace_id"], entry["span_id"] = span
        assignment = _assignment(entry["request_id"])
        if assignment is not None:
            entry["experiment"], entry["arm"] = assignment
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # Redacted field by field, before JSON escaping could change how a secret is spelled.
        return json.dumps(self._redacted(entry), default=str, ensure_ascii=False)

    def _redacted(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._redact(value)
        if isinstance(value, dict):
            return {key: self._redacted(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self._redacted(item) for item in value]
        if isinstance(value, int | float | bool) or value is None:
            return value
        return self._redact(str(value))


class TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal, redacted like the JSON ones."""

    def __init__(self, redactor: SecretRedactor | None = None) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s")
        self._redact = redactor or SecretRedactor()

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id.get()
        return self._redact(super().format(record))


def logging_config(level: str, log_format: str, secrets: Iterable[str] = ()) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the service and uvicorn, to stdout.

    uvicorn applies it in every worker process it spawns, so each worker logs the same way.
    """
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "service": {"()": formatter, "redactor": SecretRedactor(list(secrets))},
        },
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "service",
                "stream": "ext://sys.stdout",
            }
        },
        "root": {"handlers": ["stdout"], "level": level.upper()},
        "loggers": {
            # uvicorn's own handlers would print a second, unstructured copy.
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }
