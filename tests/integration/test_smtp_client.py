"""integrations/smtp.py against real aiosmtpd servers on loopback: STARTTLS with login (RFC 3207, RFC 4954),
implicit TLS (RFC 8314), a server without STARTTLS refused, wrong credentials refused with a reason."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
import threading
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from integrations.smtp import MailError, OutgoingMail, send_all


def _cert(tmp_path: Any) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


class _Box:
    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.lock:
            self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


def _auth(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = auth_data.login == b"caseload" and auth_data.password == b"s3cret:pw"
    return AuthResult(success=ok, handled=False)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def tls(tmp_path: Any) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert, key = _cert(tmp_path)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=cert)
    return server, client


MAIL = OutgoingMail("t.larkspur@district.example.test", "Caseload: 1 alert", "Sam Alder joined Biology\n",
                    (("List-Unsubscribe", "<https://caseload.example/alerts/unsubscribe/x>"),
                     ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")))


def test_starttls_with_login_delivers_with_unsubscribe_headers(tls):
    server_ctx, client_ctx = tls
    box, port = _Box(), _port()
    controller = Controller(box, hostname="127.0.0.1", port=port, tls_context=server_ctx, require_starttls=True,
                            authenticator=_auth, auth_require_tls=True)
    controller.start()
    try:
        results = send_all(f"smtp+starttls://caseload:s3cret%3Apw@127.0.0.1:{port}", "Caseload <c@district.test>",
                           [MAIL], tls_context=client_ctx)
        assert results == [(MAIL, None)]
        [msg] = box.messages
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg["Auto-Submitted"] == "auto-generated" and msg["From"] == "Caseload <c@district.test>"
        with pytest.raises(MailError, match="refused the user name or password"):
            send_all(f"smtp+starttls://caseload:wrong@127.0.0.1:{port}", "c@district.test", [MAIL],
                     tls_context=client_ctx)
    finally:
        controller.stop()


def test_implicit_tls_smtps_delivers(tls):
    server_ctx, client_ctx = tls
    box, port = _Box(), _port()
    controller = Controller(box, hostname="127.0.0.1", port=port, ssl_context=server_ctx)
    controller.start()
    try:
        assert send_all(f"smtps://127.0.0.1:{port}", "c@district.test", [MAIL], tls_context=client_ctx) == [(MAIL, None)]
        assert len(box.messages) == 1
    finally:
        controller.stop()


def test_starttls_required_but_not_offered_sends_nothing():
    box, port = _Box(), _port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with pytest.raises(MailError, match="does not offer STARTTLS"):
            send_all(f"smtp+starttls://127.0.0.1:{port}", "c@district.test", [MAIL])
        assert box.messages == []
    finally:
        controller.stop()
