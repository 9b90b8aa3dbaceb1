"""All of Gallra's logging configuration, for every process: `gallra serve`, `gallra worker`, the
other CLI commands and intake's writer process (`python -m plugin.intake.writer`).

The rule is an allow-list, not masking: only Gallra's own loggers (`gallra` and below), whose every
line is written without personal data, are written below WARNING. Libraries log what passes
through them: httpx writes every provider URL at INFO (`?filter=equals(email,...)`,
`/contacts/<e-mail>`), httpcore response headers at DEBUG, SQLAlchemy statements with their
parameters and result rows at INFO/DEBUG, aiosqlite each call with its arguments at DEBUG,
uvicorn's access log each URL with its query string (`/auth/callback?code=...&hmac=...`) and the
client's address. None of that is written, whatever `GALLRA_LOG_LEVEL` says: the one handler drops
any library record below WARNING, and uvicorn's access log is replaced by `AccessLog` below.

What a library writes at WARNING and above is reduced too, because exception messages quote
values (`httpx.HTTPStatusError` names the URL, a PostgreSQL unique violation the key's value,
pydantic's errors the input): no record is written with an exception's message, only its class
and the frames it passed through, and a library's message keeps its first line only.

docs/architecture.md ("Logging") lists every logger and what it may write at each level.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from types import TracebackType
from typing import TYPE_CHECKING, TextIO, TypedDict

from plugin.settings import SettingsError

if TYPE_CHECKING:  # the writer process imports this module and serves no HTTP
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

GALLRA = "gallra"
ACCESS = "gallra.access"
LIBRARY_FLOOR = logging.WARNING
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Loggers that write nothing at all: uvicorn's access log (replaced by `AccessLog`) also names the
# client's address, which is personal data.
SILENCED = ("uvicorn.access",)


class UvicornLogging(TypedDict):
    log_config: None
    access_log: bool


# What uvicorn is given (by `gallra serve`): it configures no logging and writes no access log.
UVICORN = UvicornLogging(log_config=None, access_log=False)
_CAUSED = "\nThe above exception was the direct cause of the following exception:\n\n"
_DURING = "\nDuring handling of the above exception, another exception occurred:\n\n"
_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def level_of(level: str | int) -> int:
    """`GALLRA_LOG_LEVEL` as a number; a bad name is a settings error naming the valid ones."""
    if isinstance(level, int):
        return level
    names = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    if level.upper() not in names:
        raise SettingsError(f"GALLRA_LOG_LEVEL is invalid: {level!r} (valid: {', '.join(names)})")
    return logging.getLevelNamesMapping()[level.upper()]


def is_gallra(name: str) -> bool:
    return name == GALLRA or name.startswith(GALLRA + ".")


class _Handler(logging.StreamHandler[TextIO]):
    """The process's one handler: Gallra's records at the configured level, libraries' from
    WARNING, and none from the silenced loggers (even if something lowers their levels)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if is_gallra(record.name):
            return super().filter(record)
        if record.levelno < LIBRARY_FLOOR or record.name in SILENCED:
            return False
        return super().filter(record)


class SafeFormatter(logging.Formatter):
    """Writes no exception message: not in tracebacks, not as a `%s` argument. A library's
    message keeps its first line (asyncio puts the failed task's exception, with its message, on
    the second; its callback lines quote the callback's arguments, cut at the parenthesis)."""

    def __init__(self) -> None:
        super().__init__(FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        # A copy: other handlers (pytest's, an embedding application's) see the record unchanged.
        record = logging.makeLogRecord(record.__dict__)
        record.msg = self._message(record)
        record.args = None
        record.exc_text = None
        return super().format(record)

    @staticmethod
    def _message(record: logging.LogRecord) -> str:
        args = record.args
        if isinstance(args, tuple):
            args = tuple(_withheld(arg) for arg in args)
        elif isinstance(args, dict):
            args = {key: _withheld(value) for key, value in args.items()}
        try:
            message = str(record.msg) % args if args else str(record.msg)
        except (TypeError, ValueError, KeyError):
            message = str(record.msg)  # as logging itself would fail: keep the template only
        if is_gallra(record.name):
            return message
        message = message.split("\n", 1)[0]
        if record.name == "asyncio":
            message = message.split("(", 1)[0]
        return message

    def formatException(self, ei: _ExcInfo | tuple[None, None, None]) -> str:
        return "".join(exception_lines(ei[1])).rstrip("\n") if ei[1] is not None else ""


def _withheld(value: object) -> object:
    return _class_name(value) if isinstance(value, BaseException) else value


def _class_name(exc: BaseException) -> str:
    kind = type(exc)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def exception_lines(exc: BaseException) -> list[str]:
    """A traceback like Python's (causes first), with each exception's class in place of its message."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    lines: list[str] = []
    for position, link in enumerate(reversed(chain)):
        if position:
            lines.append(_CAUSED if link.__cause__ is not None else _DURING)
        lines.append("Traceback (most recent call last):\n")
        lines.extend(traceback.format_tb(link.__traceback__))
        lines.append(f"{_class_name(link)} (message withheld)\n")
        if isinstance(link, BaseExceptionGroup):
            lines.extend(f"  contains {_class_name(inner)}\n" for inner in link.exceptions)
    return lines


def configure(level: str | int, stream: TextIO | None = None) -> None:
    """Set up logging for this process; idempotent (a second call replaces the first's handler).

    Gallra's loggers get `level`; the root logger stays at WARNING so that libraries' DEBUG and
    INFO records are not even built."""
    number = level_of(level)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(handler)
    handler = _Handler(stream if stream is not None else sys.stderr)
    handler.setFormatter(SafeFormatter())
    root.addHandler(handler)
    root.setLevel(LIBRARY_FLOOR)
    logging.getLogger(GALLRA).setLevel(number)
    for name in SILENCED:
        silenced = logging.getLogger(name)
        silenced.handlers.clear()
        silenced.propagate = False
    # SQLAlchemy and uvicorn set their own loggers' levels; the handler's floor holds regardless.
    logging.getLogger("sqlalchemy").setLevel(LIBRARY_FLOOR)


access_log = logging.getLogger(ACCESS)


def route_of(scope: Scope) -> str:
    """The matched route's template (`/admin/api/requests/{request_id:int}`), never the path
    itself: paths and query strings can carry identifiers, codes and tokens."""
    from starlette.routing import Mount, Route

    route = scope.get("route")
    if isinstance(route, Route):
        return route.path
    if isinstance(route, Mount):
        return route.path + "/{path}"
    return "(no route)"


class AccessLog:
    """uvicorn's access log line without what identifies anyone: method, route template, status
    and duration; no query string, path parameters or client address."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not access_log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the response started: the server answers 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            access_log.info(
                "%s %s %d %.1fms",
                scope["method"],
                route_of(scope),
                status,
                (time.perf_counter() - started) * 1000,
            )
