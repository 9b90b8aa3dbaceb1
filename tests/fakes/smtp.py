"""A local SMTP server (aiosmtpd, in its own thread) that keeps every message it receives.

    with SmtpSink() as sink:
        settings = make_settings(**sink.settings())   # SMTP_HOST/PORT pointed at the sink, no TLS
        ...                                            # code under test sends mail
    assert sink.messages[0]["Subject"].startswith("Begäran om radering")

`sink.messages` are parsed `email.message.EmailMessage`s; `sink.envelopes` holds (from, [to]).
`sink.refuse_next(times=1, reply="451 4.3.0 Try again later")` answers the next messages' DATA with
that reply (4xx temporary, 5xx permanent), to test retries.
"""

from __future__ import annotations

import email
import email.policy
import socket
from collections import deque
from email.message import EmailMessage
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.sink._refusals:
            return self.sink._refusals.popleft()
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.sink.messages.append(message)
        self.sink.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


class SmtpSink:
    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or _free_port()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self._refusals: deque[str] = deque()
        self._controller = Controller(_Handler(self), hostname=host, port=self.port)

    def settings(self) -> dict[str, Any]:
        """Overrides for `make_settings()` that send mail here."""
        return {"smtp_host": self.host, "smtp_port": self.port, "smtp_starttls": False}

    def refuse_next(self, times: int = 1, reply: str = "451 4.3.0 Try again later") -> None:
        self._refusals.extend([reply] * times)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
