"""Self-signed URLs of the local store: HMAC-SHA256 over what a URL may do, until when.

A part URL or a download URL carries ``expires`` (Unix seconds) and
``signature`` query parameters; the signature covers the HTTP method, the key
(an upload id or a stored path), the part number, the download file name and
the expiry, so none of them can be changed without the secret. The upstream
CLI fetches these URLs with a bare HTTP client: the signature is the only
credential.

>>> query = sign(b"secret", "PUT", "upload-1", 60, part=2)
>>> verify(b"secret", "PUT", "upload-1", query["expires"], query["signature"], part=2)
>>> verify(b"secret", "PUT", "upload-1", query["expires"], query["signature"], part=3)
Traceback (most recent call last):
...
kqi_services.storage.base.SignatureError: The URL signature is invalid
"""

from __future__ import annotations

import hashlib
import hmac
import time

from .base import SignatureError


def _mac(secret: bytes, method: str, key: str, part: int, filename: str, expires: int) -> str:
    # NUL cannot occur in a method, key or file name: it keeps the fields apart
    message = f"{method.upper()}\0{key}\0{part}\0{filename}\0{expires}"
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def sign(secret: bytes, method: str, key: str, expires_in: int, *, part: int = 0, filename: str = "",
         now: float | None = None) -> dict[str, str]:
    """The query parameters (``expires``, ``signature``) that let ``method`` on ``key`` until then."""
    expires = int(time.time() if now is None else now) + int(expires_in)
    return {"expires": str(expires), "signature": _mac(secret, method, key, part, filename, expires)}


def verify(secret: bytes, method: str, key: str, expires: str | None, signature: str | None, *,
           part: int = 0, filename: str = "", now: float | None = None) -> None:
    """Raise SignatureError unless ``signature`` was made by ``sign`` for these fields and is unexpired."""
    if not expires or not signature or not expires.isascii() or not expires.isdigit():
        raise SignatureError("The URL is not signed")
    expected = _mac(secret, method, key, part, filename, int(expires))
    if not hmac.compare_digest(expected, signature.encode("ascii", "replace").decode()):
        raise SignatureError("The URL signature is invalid")
    if int(expires) < (time.time() if now is None else now):
        raise SignatureError("The URL has expired")
