"""The exceptions of the kqi client."""

from __future__ import annotations

import requests


class KqiApiError(Exception):
    """An error answer of the kqi service (or status 0 when it could not be reached)."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{status} {message}" if status else message)
        self.status = status
        self.message = message

    @classmethod
    def from_response(cls, response: requests.Response) -> KqiApiError:
        """The error a ≥400 response describes: its JSON ``message``, else its reason and text."""
        message = None
        try:
            body = response.json()
            if isinstance(body, dict):
                message = body.get("message")
        except ValueError:
            pass
        if not message:
            text = (response.text or "").strip()
            message = f"{response.reason or 'Error'}" + (f": {text[:500]}" if text else "")
        return cls(response.status_code, message)


class KqiConfigError(Exception):
    """Nothing tells the client where the service is or which token to use."""
