"""Structured log lines: ``ts=... level=... logger=... event=... key=value`` (or one JSON object per line)."""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

import orjson

__all__ = ["configure_logging", "get_logger", "kv"]

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


#: characters a value is quoted for; control characters (C0, DEL, C1, line separators) are escaped in both formats,
#: so a client's text (a path, a header) can neither forge a log line nor send a terminal escape
_NEEDS_QUOTES = re.compile(r'[\s"=\\\x00-\x1f\x7f-\x9f\u2028\u2029]')
_UNESCAPED = re.compile(r"[\x7f-\x9f\u2028\u2029]")  # JSON leaves these as they are


def _escape_rest(text: str) -> str:
    return _UNESCAPED.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _quote(v: Any) -> str:
    s = str(v)
    if not s or _NEEDS_QUOTES.search(s):
        return _escape_rest(orjson.dumps(s).decode())
    return s


class KeyValueFormatter(logging.Formatter):
    def __init__(self, as_json: bool = False) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields.update({k: v for k, v in vars(record).items() if k not in _RESERVED and not k.startswith("_")})
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        if self.as_json:
            return _escape_rest(orjson.dumps(fields, default=str).decode())
        return " ".join(f"{k}={_quote(v)}" for k, v in fields.items())


def configure_logging(level: str = "INFO", fmt: str = "kv", stream: Any = None) -> None:
    """Route every logger through one structured handler on stderr."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(KeyValueFormatter(as_json=fmt == "json"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


def kv(**fields: Any) -> dict[str, Any]:
    """``log.info("batch written", extra=kv(rows=10))``: fields for a structured line."""
    return fields
