"""List filters and paging of the v2 contract, shared by data, datasets and runs.

Filters are PascalCase query parameters (``Id``, ``Name``, ``Memo``,
``CreatedAt``, ``CreatedBy``) as the upstream client sends them. Text filters
match substrings (case-insensitive); ``Id`` and ``CreatedAt`` accept a
comparison prefix (``>10``, ``<=2026-01-31``) as KAMONOHASHI's search boxes
do, else an exact id or a date prefix. Paging is ``perPage``/``page``; the
total goes in ``X-Total-Count``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from .errors import InvalidInput

MAX_PER_PAGE = 10_000
_COMPARE = re.compile(r"^(>=|<=|>|<|=)?\s*(.+)$")


@dataclass
class Page:
    per_page: int | None
    page: int

    @classmethod
    def from_args(cls, per_page: str | None, page: str | None) -> Page:
        try:
            per = int(per_page) if per_page not in (None, "") else None
            number = int(page) if page not in (None, "") else 1
        except ValueError:
            raise InvalidInput("perPage and page must be integers") from None
        if per is not None and not 0 < per <= MAX_PER_PAGE:
            raise InvalidInput(f"perPage must be between 1 and {MAX_PER_PAGE}")
        if number < 1:
            raise InvalidInput("page must be at least 1")
        return cls(per, number)

    def apply(self, query):
        if self.per_page is None:
            return query
        return query.offset((self.page - 1) * self.per_page).limit(self.per_page)


def _split(value: str):
    op, rest = _COMPARE.match(value.strip()).groups()
    return op or "=", rest.strip()


def id_filter(column, value: str):
    op, rest = _split(value)
    try:
        number = int(rest)
    except ValueError:
        raise InvalidInput(f"Id filter {value!r} must be a number, optionally after >, <, >= or <=") from None
    return {"=": column == number, ">": column > number, "<": column < number,
            ">=": column >= number, "<=": column <= number}[op]


def date_filter(column, value: str):
    op, rest = _split(value)
    rest = rest.replace("/", "-")
    try:
        day = datetime.strptime(rest[:10], "%Y-%m-%d")
    except ValueError:
        raise InvalidInput(f"CreatedAt filter {value!r} must be a date like 2026-01-31") from None
    end = day + timedelta(days=1)
    return {"=": (column >= day) & (column < end), ">": column >= end, "<": column < day,
            ">=": column >= day, "<=": column < end}[op]


def text_filter(column, value: str):
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(column).like(f"%{escaped.lower()}%", escape="\\")


def apply_standard_filters(query, model, args: dict):
    """Apply the Id/Name/Memo/CreatedAt/CreatedBy filters present in ``args``."""
    if args.get("Id"):
        query = query.where(id_filter(model.id, args["Id"]))
    for key, column in (("Name", "name"), ("Memo", "memo"), ("CreatedBy", "created_by")):
        if args.get(key) and hasattr(model, column):
            query = query.where(text_filter(getattr(model, column), args[key]))
    if args.get("CreatedAt"):
        query = query.where(date_filter(model.created_at, args["CreatedAt"]))
    return query


def count(db, query) -> int:
    return db.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
