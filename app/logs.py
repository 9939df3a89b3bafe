"""Structured logs: one JSON object per line (LOG_FORMAT=json) or plain text."""

from __future__ import annotations

import logging
import time

import orjson

from app.settings import Settings

__all__ = ["JsonFormatter", "configure_logging", "worker_logging_config"]

_STANDARD = set(vars(logging.makeLogRecord({})))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body = {
            "ts": round(record.created, 3),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        body.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(body, default=str).decode()


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for noisy in ("aiokafka", "faust.transport", "faust.tables.recovery", "faust.stores", "mode"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def worker_logging_config(settings: Settings) -> dict | None:
    """dictConfig for the Faust worker (which sets up logging itself); None keeps Faust's text."""
    if settings.log_format != "json":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json"}},
        "root": {"level": settings.log_level.upper(), "handlers": ["stderr"]},
    }
