"""One line per log event, in every process: text for people, or JSON.

RQ and rq-scheduler attach their own handlers unless a logger already has one;
naming their loggers here (with propagate off) keeps each event to one line in one
format. The web server (granian) is given the same dictionary (config/serve.py).
"""

import json
import logging
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# Loggers that configure their own handlers when they find none of their own.
OWN_HANDLER_LOGGERS = [
    "rq_scheduler.scheduler",
    "rq.worker",
    "rq.job",
    "_granian",
    "granian.access",
]


class JsonFormatter(logging.Formatter):
    """One JSON object per line; a traceback goes in `exc_info`, escaped."""

    def format(self, record: logging.LogRecord) -> str:
        event = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        if record.exc_info:
            event["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            event["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(event, ensure_ascii=False)


def logging_config(log_format: str, level: str) -> dict:
    formatter = (
        {"()": "config.logformat.JsonFormatter"}
        if log_format == "json"
        else {"format": TEXT_FORMAT}
    )
    handler = {"handlers": ["console"], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "filters": {"redact": {"()": "config.logfilters.RedactSecrets"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["redact"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {name: dict(handler) for name in OWN_HANDLER_LOGGERS},
    }
