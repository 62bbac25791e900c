"""Process logging: one line per record, as logfmt-style text or as JSON (`WEBHOOKS_LOG_FORMAT`).

Structured fields travel in `extra={"fields": {...}}` and come out as `key=value` pairs (text) or as
keys of the JSON object, so a log pipeline can filter attempts by tenant, endpoint or status without
parsing sentences. What goes into those fields is the caller's responsibility: the attempt line of
`activities/delivery.py` carries ids, status and duration, never a secret, a signature or a payload.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Literal

from core.tracing import current_ids

FIELDS = "fields"  # the `extra` key that carries a record's structured fields


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    value = getattr(record, FIELDS, None)
    return dict(value) if isinstance(value, dict) else {}


def _timestamp(record: logging.LogRecord) -> str:
    return (
        datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def _logfmt_value(value: Any) -> str:
    text = str(value)
    if text and not any(c in text for c in ' "=\\') and "\n" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`2026-01-01T00:00:00.000Z INFO webhooks.attempts attempt tenant=a status_code=200 …` (None left out)"""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), record.levelname, record.name, record.getMessage()]
        parts += [f"{k}={_logfmt_value(v)}" for k, v in _fields(record).items() if v is not None]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `ts`, `level`, `logger`, `msg`, then the record's fields, and `trace_id`
    and `span_id` when written inside a span."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in _fields(record).items():
            entry.setdefault(key, value)
        # Written inside a span (an API request, an attempt, when tracing is on): its ids, so that a log
        # pipeline can go from the line to its trace. The line is formatted in the thread that wrote it,
        # where the span is current.
        ids = current_ids()
        if ids is not None:
            entry.setdefault("trace_id", ids[0])
            entry.setdefault("span_id", ids[1])
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(log_format: Literal["text", "json"], *, level: int = logging.INFO) -> None:
    """Send every log record of the process to stderr in `log_format`."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its request lines would carry endpoint URLs
