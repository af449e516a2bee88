"""Checks of request bodies at the edge: fields, types and the contract's patterns.

Each checker raises InvalidInput with a message naming the field, so a
client sees exactly what to fix. Two rules hold for every field:

* integers fit the database's int64 (ids above all: the contract's ids are
  int64, and a larger number cannot even be looked up);
* strings carry no NUL, control character (C0, DEL, C1) nor lone surrogate;
  only the free-text fields (``memo``, ``entryPoint``) may hold tabs and line
  breaks.
"""

from __future__ import annotations

import re

from .errors import InvalidInput

# patterns of the v2 contract
TENANT_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
REGISTRY_NAME = TENANT_NAME
USER_NAME = re.compile(r"^[a-zA-Z0-9]([-_.@a-zA-Z0-9]*[a-zA-Z0-9])?$")
NODE_NAME = re.compile(r"^[a-zA-Z0-9]([-_.a-zA-Z0-9]*[a-zA-Z0-9])?$")
URL_SCHEMES = ("http://", "https://", "ssh://", "git@", "file://")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: fields whose text may span lines (a memo, a run's command script)
FREE_TEXT_FIELDS = frozenset({"memo", "entryPoint"})
# NUL and other C0 controls, DEL, C1 controls, and lone surrogates (which UTF-8 cannot encode)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")

_MISSING = object()


def require_object(body, what="request body") -> dict:
    if not isinstance(body, dict):
        raise InvalidInput(f"{what} must be a JSON object")
    return body


def field(body: dict, name: str, kind, *, required=False, default=None, nullable=True):
    """Read ``body[name]`` checking its JSON type; ``kind`` is a type or tuple of types."""
    value = body.get(name, _MISSING)
    if value is _MISSING or (value is None and nullable and not required):
        if required:
            raise InvalidInput(f"Missing field {name}")
        return default
    if value is None:
        raise InvalidInput(f"Field {name} must not be null")
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # bool is an int in Python but not in JSON
    if isinstance(value, bool) and bool not in kinds:
        raise InvalidInput(f"Field {name} must be {_type_name(kinds)}")
    if not isinstance(value, kinds):
        raise InvalidInput(f"Field {name} must be {_type_name(kinds)}")
    if isinstance(value, int) and not isinstance(value, bool):
        int64(value, f"Field {name}")
    return value


def int64(number: int, what: str = "id") -> int:
    """``number`` if the database's int64 columns can hold it."""
    if not INT64_MIN <= number <= INT64_MAX:
        raise InvalidInput(f"{what} is out of range (a 64-bit integer)")
    return number


def no_control_characters(value: str, what: str, *, multiline: bool = False) -> str:
    """``value`` if it holds no NUL or control character (``multiline``: tabs and line breaks allowed)."""
    if (_CONTROL_IN_TEXT if multiline else _CONTROL).search(value):
        allowed = " other than tabs and line breaks" if multiline else ""
        raise InvalidInput(f"{what} must not contain NUL or control characters{allowed}")
    return value


def string(body, name, *, required=False, default=None, max_length=1024, pattern=None, strip=True,
           multiline=None):
    """A string field; ``multiline`` (default: a field of FREE_TEXT_FIELDS) allows tabs and line breaks."""
    value = field(body, name, str, required=required, default=default)
    if value is None:
        return None
    if multiline is None:
        multiline = name in FREE_TEXT_FIELDS
    no_control_characters(value, f"Field {name}", multiline=multiline)
    if strip:
        value = value.strip()
    if required and not value:
        raise InvalidInput(f"Field {name} must not be empty")
    if len(value) > max_length:
        raise InvalidInput(f"Field {name} must be at most {max_length} characters")
    if pattern is not None and not pattern.fullmatch(value):
        raise InvalidInput(f"Field {name} must match {pattern.pattern}")
    return value


def integer(body, name, *, required=False, default=None, minimum=None, maximum=None):
    value = field(body, name, int, required=required, default=default)
    if value is None:
        return None
    if minimum is not None and value < minimum:
        raise InvalidInput(f"Field {name} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise InvalidInput(f"Field {name} must be at most {maximum}")
    return value


def boolean(body, name, *, default=False):
    return field(body, name, bool, default=default)


def integer_list(body, name, *, required=False):
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidInput(f"Missing field {name}")
        return []
    if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
        raise InvalidInput(f"Field {name} must be a list of integers")
    for number in value:
        int64(number, f"Field {name}")
    return list(dict.fromkeys(value))


def object_list(body, name, *, required=False):
    value = field(body, name, list, required=required, default=[])
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidInput(f"Field {name}[{i}] must be an object")
    return value


def endpoint_url(body, name, *, required=True):
    """A URL limited to http(s)/ssh/file schemes that cannot be read as an option."""
    value = string(body, name, required=required)
    if not value:
        return value
    if value.startswith("-") or not value.startswith(URL_SCHEMES) or any(c.isspace() for c in value):
        raise InvalidInput(f"Field {name} must be an http(s), ssh or file URL")
    return value.rstrip("/")


def path_id(value: str, what="id") -> int:
    """An int64 id from a URL path segment."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{what} must be an integer") from None
    if number < 1:
        raise InvalidInput(f"{what} is out of range")
    return int64(number, what)


def _type_name(kinds) -> str:
    names = {str: "a string", int: "an integer", bool: "a boolean", list: "a list", dict: "an object", float: "a number"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


TAG = re.compile(r"^[^,!=<>][^,]*$")
MAX_TAG_LENGTH = 256
MAX_FILE_NAME_BYTES = 255


def safe_file_name(name, what="fileName") -> str:
    """A file name usable as one path segment anywhere: no '/', '..', NUL or control characters."""
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{what} must be a non-empty string")
    if name in (".", "..") or "/" in name or "\\" in name:
        raise InvalidInput(f"{what} {name!r} must be a plain file name without '/' or '..'")
    no_control_characters(name, what)
    if len(name.encode()) > MAX_FILE_NAME_BYTES:
        raise InvalidInput(f"{what} must be at most {MAX_FILE_NAME_BYTES} bytes")
    return name


def tags(body, name="tags") -> list[str]:
    value = field(body, name, list, default=[])
    result = []
    for tag in value:
        if not isinstance(tag, str) or not tag.strip():
            raise InvalidInput(f"Field {name} must be a list of non-empty strings")
        tag = tag.strip()
        check_tag(tag)
        result.append(tag)
    return list(dict.fromkeys(result))


def check_tag(tag: str) -> str:
    no_control_characters(tag, "a tag")
    if len(tag) > MAX_TAG_LENGTH:
        raise InvalidInput(f"a tag must be at most {MAX_TAG_LENGTH} characters")
    if not TAG.fullmatch(tag):
        raise InvalidInput(f"tag {tag!r} must not contain ',' nor start with one of !=<>")
    return tag
