"""Domain errors of the kqi core; handlers map them to HTTP status codes."""


class KqiError(Exception):
    status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidInput(KqiError):
    status = 400


class Unauthorized(KqiError):
    status = 401


class Forbidden(KqiError):
    status = 403


class NotFound(KqiError):
    status = 404


class Conflict(KqiError):
    status = 409


class Unavailable(KqiError):
    """What the platform cannot offer on this host (a missing sandbox tool, say)."""

    status = 503
