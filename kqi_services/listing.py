"""List filters and paging of the v2 contract, shared by data, datasets and runs.

Filters are PascalCase query parameters (``Id``, ``Name``, ``Memo``,
``CreatedAt``, ``CreatedBy``) as the upstream client sends them. Text filters
match substrings (case-insensitive); ``Id`` and ``CreatedAt`` accept a
comparison prefix (``>10``, ``<=2026-01-31``) as KAMONOHASHI's search boxes
do, else an exact id or a date prefix. Paging is ``perPage``/``page`` (int32
as the contract has them) and ``withTotal`` is a boolean; the total goes in
``X-Total-Count``. A filter or paging argument that cannot be read is a 400
naming it, never a server error. ``Sort`` (added) orders a list by one of
``SORT_COLUMNS``, ``-`` first for descending (``Sort=-createdAt``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import false, func, select, true

from .errors import InvalidInput
from .validation import int64

MAX_PER_PAGE = 10_000
MAX_PAGE = 2**31 - 1
_COMPARE = re.compile(r"(>=|<=|>|<|=)?\s*(.+)", re.DOTALL)
_INTEGER = re.compile(r"-?[0-9]{1,20}")
# a day, maybe with the time of day after it (only the day counts)
_DATE = re.compile(r"([0-9]{4}-[0-9]{1,2}-[0-9]{1,2})([T ][0-9:.]*(Z|[+-][0-9:]+)?)?")
_FLAGS = {"true": True, "false": False}


@dataclass
class Page:
    per_page: int | None
    page: int

    @classmethod
    def from_args(cls, per_page: str | None, page: str | None, with_total: str | None = None) -> Page:
        per = _integer(per_page, "perPage") if per_page not in (None, "") else None
        number = _integer(page, "page") if page not in (None, "") else 1
        if per is not None and not 0 < per <= MAX_PER_PAGE:
            raise InvalidInput(f"perPage must be between 1 and {MAX_PER_PAGE}")
        if not 0 < number <= MAX_PAGE:
            raise InvalidInput(f"page must be between 1 and {MAX_PAGE}")
        if with_total not in (None, "") and with_total.lower() not in _FLAGS:
            raise InvalidInput("withTotal must be true or false")
        return cls(per, number)

    def apply(self, query):
        if self.per_page is None:
            return query
        return query.offset((self.page - 1) * self.per_page).limit(self.per_page)


def _integer(value: str, what: str) -> int:
    if not _INTEGER.fullmatch(value.strip()):
        raise InvalidInput(f"{what} must be an integer")
    return int(value)


def _split(value: str, what: str) -> tuple[str, str]:
    """The comparison (``=`` when none) and the operand of a filter value."""
    match = _COMPARE.fullmatch(value.strip())
    if match is None:
        raise InvalidInput(f"{what} filter must not be empty")
    op, rest = match.groups()
    return op or "=", rest.strip()


def id_filter(column, value: str):
    op, rest = _split(value, "Id")
    if not _INTEGER.fullmatch(rest):
        raise InvalidInput(f"Id filter {value!r} must be a number, optionally after >, <, >= or <=")
    number = int64(int(rest), f"Id filter {value!r}")
    return {"=": column == number, ">": column > number, "<": column < number,
            ">=": column >= number, "<=": column <= number}[op]


def date_filter(column, value: str):
    op, rest = _split(value, "CreatedAt")
    match = _DATE.fullmatch(rest.replace("/", "-"))
    try:
        day = datetime.strptime(match[1], "%Y-%m-%d")
    except (TypeError, ValueError):
        raise InvalidInput(f"CreatedAt filter {value!r} must be a date like 2026-01-31") from None
    if day.date() == date.max:  # no day after it: "after" matches nothing, "up to" everything
        return {"=": column >= day, ">": false(), "<": column < day, ">=": column >= day, "<=": true()}[op]
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


#: what a list may be sorted by (``Sort=name``, ``Sort=-createdAt``), and the column each names
SORT_COLUMNS = {"id": "id", "name": "name", "status": "status", "createdAt": "created_at", "memo": "memo"}


def sorted_by(query, model, sort: str | None):
    """``query`` in the order ``sort`` asks (the id breaks ties the same way); as it is when ``sort`` is empty."""
    if not sort:
        return query
    descending = sort.startswith("-")
    column = SORT_COLUMNS.get(sort[1:] if descending else sort)
    if column is None or not hasattr(model, column):
        known = ", ".join(k for k, c in SORT_COLUMNS.items() if hasattr(model, c))
        raise InvalidInput(f"Sort must be one of {known}, with '-' first for descending, not {sort[:50]!r}")
    ordered = [getattr(model, column), model.id]
    return query.order_by(None).order_by(*(c.desc() if descending else c.asc() for c in ordered))


def count(db, query) -> int:
    return db.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
