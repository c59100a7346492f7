"""Logging set-up: plain lines for people, or one JSON object per line for log collectors."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

# Fields the service puts on records (request id, and the access log's route, status and time).
EXTRA_FIELDS = ("request_id", "route", "status", "ms")
# Characters that end or rewrite a line for some reader: C0 and C1 controls, DEL, line and paragraph
# separators. In a logged value (a path with %0A) they would forge a line of their own.
_BREAKS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_controls(text: str) -> str:
    """`text` on one line: control characters and line separators written as escapes (\\n, \\u001b)."""
    return _BREAKS.sub(lambda m: _NAMED.get(m[0]) or f"\\u{ord(m[0]):04x}", text)


class TextFormatter(logging.Formatter):
    """Plain lines; a record's own text cannot break its line (its traceback still takes lines below)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        """The record's line, escaped."""
        return escape_controls(super().formatMessage(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the extra fields, any exception."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update({name: getattr(record, name) for name in EXTRA_FIELDS if hasattr(record, name)})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        # json.dumps escapes C0 controls but, with ensure_ascii=False, leaves C1 controls and U+2028/9
        # as they are: readers that split lines at those (Python's splitlines) would see two records.
        return escape_controls(json.dumps(out, ensure_ascii=False, default=str))


def configure_logging(level: str, fmt: str = "text") -> logging.Handler:
    """Send every log record to stderr as `fmt` ('text' or 'json'); return the handler."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # The libraries' own start-up chatter (which CPU kernels load, which prompts exist).
    for noisy in ("faiss.loader", "sentence_transformers", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return handler
