"""Encryption at rest with the data keys (``CASELOAD_DATA_KEYS``, newest first).

MultiFernet encrypts with the first key and decrypts with any, so a new key can be put in front and old
ciphertexts re-encrypted at leisure (``caseload keys rotate-data``)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


class DataKeyError(RuntimeError):
    """A ciphertext could not be decrypted with any configured data key."""


class DataCipher:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one data key is required")
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])

    def encrypt(self, text: str) -> bytes:
        return self._fernet.encrypt(text.encode("utf-8"))

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(token)).decode("utf-8")
        except InvalidToken:
            raise DataKeyError("ciphertext not readable with the configured CASELOAD_DATA_KEYS") from None

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt with the newest key (MultiFernet.rotate)."""
        return self._fernet.rotate(bytes(token))


def cipher() -> DataCipher:
    """The cipher of the current app, built once at start-up."""
    return current_app.extensions["caseload.cipher"]  # type: ignore[no-any-return]


def init_app(app) -> None:  # type: ignore[no-untyped-def]
    app.extensions["caseload.cipher"] = DataCipher(app.config["CASELOAD"].data_keys)
