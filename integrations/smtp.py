"""Sending e-mail through the district's SMTP server (Python's ``smtplib``): one connection for a batch of
messages, a timeout on every step, TLS as the URL says, and a typed error. No Flask, no database.

``CASELOAD_SMTP_URL`` forms: ``smtp://host:25`` (plain, for a relay on the same network), ``smtp+starttls://user:
password@host:587`` (RFC 3207 STARTTLS, refused if the server does not offer it) and ``smtps://user:password@host:465``
(RFC 8314 implicit TLS). User and password are percent-decoded.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 20.0
DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


class MailError(Exception):
    """The SMTP server could not be reached or refused the message; the words say which."""


@dataclass(frozen=True)
class SmtpTarget:
    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise MailError("The SMTP URL must look like smtp://host:25, smtp+starttls://user:password@host:587 or "
                            "smtps://user:password@host:465.")
        return cls(parts.scheme, parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme],
                   unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password else None)


@dataclass(frozen=True)
class OutgoingMail:
    to: str
    subject: str
    body: str
    headers: tuple[tuple[str, str], ...] = ()
    """Extra headers, e.g. RFC 8058 ``List-Unsubscribe`` and ``List-Unsubscribe-Post``."""


def build_message(sender: str, mail: OutgoingMail) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = mail.to
    msg["Subject"] = mail.subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].strip("> ") or None)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to alerts
    for name, value in mail.headers:
        msg[name] = value
    msg.set_content(mail.body)
    return msg


def send_all(url: str, sender: str, mails: list[OutgoingMail], timeout: float = DEFAULT_TIMEOUT,
             tls_context: ssl.SSLContext | None = None) -> list[tuple[OutgoingMail, str | None]]:
    """Send ``mails`` over one connection. Returns (mail, None) for each accepted message and (mail, reason) for
    each the server refused; raises ``MailError`` when the server cannot be used at all (nothing was sent)."""
    target = SmtpTarget.parse(url)
    context = tls_context or ssl.create_default_context()
    try:
        if target.scheme == "smtps":
            client: smtplib.SMTP = smtplib.SMTP_SSL(target.host, target.port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(target.host, target.port, timeout=timeout)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"Could not connect to the SMTP server {target.host}:{target.port} ({type(exc).__name__}).") from None
    results: list[tuple[OutgoingMail, str | None]] = []
    try:
        client.ehlo()
        if target.scheme == "smtp+starttls":
            if not client.has_extn("starttls"):
                raise MailError(f"The SMTP server {target.host} does not offer STARTTLS.")
            client.starttls(context=context)
            client.ehlo()
        if target.username:
            client.login(target.username, target.password or "")
        for mail in mails:
            try:
                client.send_message(build_message(sender, mail))
                results.append((mail, None))
            except smtplib.SMTPRecipientsRefused:
                results.append((mail, "the server refused the recipient address"))
            except smtplib.SMTPDataError as exc:
                results.append((mail, f"the server refused the message ({exc.smtp_code})"))
    except smtplib.SMTPAuthenticationError:
        raise MailError(f"The SMTP server {target.host} refused the user name or password.") from None
    except (OSError, smtplib.SMTPException) as exc:
        if results:
            log.warning("SMTP connection to %s failed after %d messages: %s", target.host, len(results),
                        type(exc).__name__)
            return results
        raise MailError(f"The SMTP conversation with {target.host} failed ({type(exc).__name__}).") from None
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()
    return results
