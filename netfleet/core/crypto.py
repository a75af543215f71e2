"""Fernet encryption of secrets at rest over NETFLEET_SECRET_KEYS (first key encrypts, every key decrypts)."""

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


def _fernet() -> MultiFernet:
    keys = settings.NETFLEET_SECRET_KEYS
    if not keys:
        raise RuntimeError("NETFLEET_SECRET_KEYS is empty")
    return MultiFernet([Fernet(key) for key in keys])


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("secret cannot be decrypted with any key in NETFLEET_SECRET_KEYS") from None


def rotate(token: str) -> str:
    """Re-encrypt a token under the primary key."""
    return _fernet().rotate(token.encode()).decode()
