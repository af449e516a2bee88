"""Encryption at rest for user and endpoint secrets (git tokens, registry and S3 keys).

Fernet (AES-128-CBC + HMAC-SHA256) keys come from configuration or from a key
file in the state directory, created on first use with mode 0600. Several
keys may be given: the first encrypts, all decrypt (key rotation).
"""

from __future__ import annotations

import os
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretBox:
    def __init__(self, keys: list[str]):
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    @classmethod
    def from_key_file(cls, path: str) -> SecretBox:
        """Load the key at ``path``, creating it (0600) if it does not exist."""
        return cls([read_or_create_secret(path, lambda: Fernet.generate_key().decode())])

    def encrypt(self, plaintext: str | None) -> bytes | None:
        if plaintext is None:
            return None
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, ciphertext: bytes | None) -> str | None:
        if ciphertext is None:
            return None
        try:
            return self._fernet.decrypt(ciphertext).decode()
        except InvalidToken as e:
            raise ValueError("a stored secret cannot be decrypted with the configured keys") from e


def read_or_create_secret(path: str, generate=lambda: secrets.token_hex(32)) -> str:
    """A secret kept in ``path`` (mode 0600, its folder 0700), created by ``generate()`` on first use."""
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(generate())
    with open(path) as f:
        return f.read().strip()
