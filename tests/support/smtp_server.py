"""A real SMTP server on loopback for tests and the e2e run (aiosmtpd): Caseload's ``smtplib`` client talks to it
over TCP exactly as to a district's relay, and every message it accepted is kept, parsed, in ``messages``."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


class _Collect:
    def __init__(self, box: list[EmailMessage], cond: threading.Condition) -> None:
        self.box, self.cond = box, cond
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:  # noqa: N802
        if address in self.refuse:
            return "550 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.cond:
            self.box.append(msg)  # type: ignore[arg-type]
            self.cond.notify_all()
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._cond = threading.Condition()
        self.handler = _Collect(self.messages, self._cond)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """Block until at least ``count`` messages arrived (a condition variable, not a sleep)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.messages) >= count, timeout=timeout):
                raise AssertionError(f"expected {count} e-mails, the SMTP server got {len(self.messages)}")
            return list(self.messages)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]
