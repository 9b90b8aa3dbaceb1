"""Keep session tokens out of the access log.

Page URLs carry a one-minute session token in `id_token` (Shopify puts it there on the first load,
`admin.js` on every link). uvicorn's access log writes the full path with its query string, so a
filter on the `uvicorn.access` logger replaces the value before the line is written.
"""

from __future__ import annotations

import logging
import re

_TOKEN = re.compile(r"(?<=[?&]id_token=)[^&\s]+")
ACCESS_LOGGER = "uvicorn.access"


def redact(text: str) -> str:
    return _TOKEN.sub("[redacted]", text)


class RedactSessionTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install() -> None:
    """Idempotent: one filter on the access logger, however many apps are built."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(existing, RedactSessionTokens) for existing in logger.filters):
        logger.addFilter(RedactSessionTokens())
