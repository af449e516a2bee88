"""The detailed search of trainings (v2 ``GET /training/search``), its saved searches and its completions.

Pure functions over SQLAlchemy, tested without a hub; ``handlers/training_search.py``
only reads the request and writes the answer. The semantics are the original
server's (``TrainingController.Search(…, SearchDetailInputModel)``):

* **Words.** ``Name``, ``ParentName``, ``StartedBy``, ``DataSet``, ``Memo``,
  ``Status``, ``EntryPoint`` and ``Tags`` hold comma-separated words, each
  matched as a substring. Its ``…Or`` flag chooses: true (the default when
  absent, as in the original) keeps a run matching any word, false one
  matching every word. A run whose field is empty (no memo, no dataset)
  never matches a field that has words. There is no ``!`` negation in the
  detailed search (only the simple list's boxes have it): ``!`` is a
  character like any other.
* **Parents and tags** are sets: with words, only runs with parents (tags)
  are kept; OR keeps a run one of whose parents' names (tags) contains one of
  the words, AND one where each word is in some parent's name (some tag),
  not necessarily the same one.
* **Bounds.** ``IdLower``/``IdUpper`` are inclusive ids. ``StartedAtLower``
  and ``StartedAtUpper`` bound the run's creation (the original's "started
  at", as in the list): from the lower instant (a day alone is its 00:00:00)
  through the whole upper day. Days are UTC days, as the database stores
  times.
* Every condition present must hold (they are ANDed), within the caller's
  tenant and the training kind, newest first as the list.

Where the original is silent or sloppy we do what a user expects: words are
trimmed and empty ones ("a,,b", a trailing comma) are dropped (the original
let an empty word match everything); matching is case-insensitive, as the
platform's list filters are (the original's is case-sensitive); a bound or a
flag that cannot be read is a 400 naming it (the original ignored it).

Saved searches (``TrainingSearchHistory``) belong to one user in one tenant;
another user's or tenant's is not found (the original shared them within a
tenant).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import aliased

from ..apimodels import audit_model
from ..errors import InvalidInput, NotFound
from ..listing import text_filter
from ..orm import DataSet, Run, RunParent, RunTag, TrainingSearchHistory
from ..validation import INT64_MAX, INT64_MIN, no_control_characters
from .kinds import TRAINING

#: the fields of words, in the contract's order (camelCase as in JSON; PascalCase in the query)
WORD_FIELDS = ("name", "parentName", "startedBy", "dataSet", "memo", "status", "entryPoint", "tags")
ID_FIELDS = ("idLower", "idUpper")
DATE_FIELDS = ("startedAtLower", "startedAtUpper")
#: SearchDetailInputModel's keys in the contract's order
DETAIL_KEYS = ("idLower", "idUpper", "name", "nameOr", "parentName", "parentNameOr", "startedAtLower",
               "startedAtUpper", "startedBy", "startedByOr", "dataSet", "dataSetOr", "memo", "memoOr", "status",
               "statusOr", "entryPoint", "entryPointOr", "tags", "tagsOr")
MAX_TEXT = 1024
MAX_WORDS = 32
MIN_HISTORY_NAME, MAX_HISTORY_NAME = 4, 256
_INTEGER = re.compile(r"[-+]?[0-9]{1,20}")
_FLAGS = {"true": True, "false": False}
# a day (2026-01-31 or 2026/1/31), maybe a time of day, maybe a UTC offset
_WHEN = re.compile(r"([0-9]{4})[-/]([0-9]{1,2})[-/]([0-9]{1,2})"
                   r"(?:[T ]([0-9]{1,2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,6})[0-9]*)?)?)?"
                   r"\s*(Z|[+-][0-9]{2}:?[0-9]{2})?", re.IGNORECASE)


def _pascal(key: str) -> str:
    return key[0].upper() + key[1:]


@dataclass(frozen=True)
class SearchDetail:
    """A checked SearchDetailInputModel: ``words`` maps a word field to (its words, OR?)."""

    id_lower: int | None = None
    id_upper: int | None = None
    started_at_lower: str | None = None
    started_at_upper: str | None = None
    words: dict[str, tuple[tuple[str, ...], bool]] = field(default_factory=dict)
    #: the text of each word field as sent (trimmed), shown back in a saved search
    texts: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_query(cls, argument) -> SearchDetail:
        """From the query parameters (``IdLower``, ``NameOr``…); ``argument(name)`` is their value or None."""
        values = {}
        for key in DETAIL_KEYS:
            name = _pascal(key)
            raw = argument(name)
            if raw is None or raw.strip() == "":
                continue
            if key in ID_FIELDS:
                values[key] = _id(raw, name)
            elif key.endswith("Or"):
                flag = _FLAGS.get(raw.strip().lower())
                if flag is None:
                    raise InvalidInput(f"{name} must be true or false")
                values[key] = flag
            else:
                values[key] = raw
        return cls._of(values, _pascal)

    @classmethod
    def from_model(cls, body, what: str = "searchDetailInputModel") -> SearchDetail:
        """From a JSON SearchDetailInputModel (camelCase, as a saved search sends and shows it)."""
        if body is None:
            return cls()
        if not isinstance(body, dict):
            raise InvalidInput(f"Field {what} must be an object")
        values = {}
        for key in DETAIL_KEYS:
            value = body.get(key)
            if value is None:
                continue
            name = f"Field {what}.{key}"
            if key in ID_FIELDS:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise InvalidInput(f"{name} must be an integer")
                value = _id(str(value), name)
            elif key.endswith("Or"):
                if not isinstance(value, bool):
                    raise InvalidInput(f"{name} must be a boolean")
            elif not isinstance(value, str):
                raise InvalidInput(f"{name} must be a string")
            values[key] = value
        return cls._of(values, lambda key: f"Field {what}.{key}")

    @classmethod
    def _of(cls, values: dict, label) -> SearchDetail:
        for key in DATE_FIELDS + WORD_FIELDS:
            if key in values:
                no_control_characters(values[key], label(key))
                values[key] = values[key].strip()
                if len(values[key]) > MAX_TEXT:
                    raise InvalidInput(f"{label(key)} must be at most {MAX_TEXT} characters")
        for key in DATE_FIELDS:
            if values.get(key):
                parse_when(values[key], label(key))
        words, texts = {}, {}
        for key in WORD_FIELDS:
            split = tuple(dict.fromkeys(w.strip() for w in values.get(key, "").split(",") if w.strip()))
            if len(split) > MAX_WORDS:
                raise InvalidInput(f"{label(key)} must have at most {MAX_WORDS} comma-separated words")
            if split:
                words[key] = (split, values.get(f"{key}Or", True))
                texts[key] = values[key]
        return cls(values.get("idLower"), values.get("idUpper"), values.get("startedAtLower") or None,
                   values.get("startedAtUpper") or None, words, texts)

    def model(self) -> dict:
        """The SearchDetailInputModel it stands for: every key; a flag is true where its field has no words."""
        model = dict.fromkeys(DETAIL_KEYS)
        model.update(idLower=self.id_lower, idUpper=self.id_upper, startedAtLower=self.started_at_lower,
                     startedAtUpper=self.started_at_upper)
        for key in WORD_FIELDS:
            model[key] = self.texts.get(key)
            model[f"{key}Or"] = self.words[key][1] if key in self.words else True
        return model


def _id(raw: str, name: str) -> int:
    if not _INTEGER.fullmatch(raw.strip()):
        raise InvalidInput(f"{name} must be an integer")
    number = int(raw)
    if not INT64_MIN <= number <= INT64_MAX:
        raise InvalidInput(f"{name} is out of range (a 64-bit integer)")
    return number


def parse_when(value: str, what: str) -> datetime:
    """A day (``2026-01-31``, ``2026/1/31``), maybe with a time and an offset, as a naive UTC datetime."""
    match = _WHEN.fullmatch(value.strip())
    try:
        if match is None:
            raise ValueError
        year, month, day, hour, minute, second, fraction, offset = match.groups()
        when = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                        int((fraction or "0").ljust(6, "0")))
        if offset and offset.upper() != "Z":
            sign = -1 if offset[0] == "-" else 1
            digits = offset[1:].replace(":", "")
            when = when - sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    except (ValueError, OverflowError):
        raise InvalidInput(f"{what} {value!r} must be a date like 2026-01-31 (or 2026/01/31), "
                           "optionally with a time like 2026-01-31T09:30") from None
    return when


def _words(column, words: tuple[str, ...], any_word: bool):
    """``column`` contains one of (``any_word``) or each of ``words``."""
    conditions = [text_filter(column, w) for w in words]
    return or_(*conditions) if any_word else and_(*conditions)


def _some_tag(words):
    return exists().where(RunTag.run_id == Run.id, or_(*(text_filter(RunTag.tag, w) for w in words)))


def _some_parent(words):
    parent = aliased(Run)
    return exists().where(RunParent.run_id == Run.id, RunParent.parent_id == parent.id,
                          or_(*(text_filter(parent.name, w) for w in words)))


def _of_sets(one, words, any_word: bool):
    """A run having an element (a tag, a parent) matching one of ``words``, or for each word one matching it."""
    return one(words) if any_word else and_(*(one((w,)) for w in words))


def search_conditions(detail: SearchDetail, tenant_id: int) -> list:
    """The WHERE conditions on ``Run`` of ``detail`` (beyond tenant and kind; ``tenant_id`` scopes datasets)."""
    conditions = []
    columns = {"name": Run.name, "startedBy": Run.created_by, "memo": Run.memo, "status": Run.status,
               "entryPoint": Run.entry_point}
    for key, (words, any_word) in detail.words.items():
        if key in columns:
            conditions.append(_words(columns[key], words, any_word))
        elif key == "dataSet":
            conditions.append(Run.dataset_id.in_(select(DataSet.id).where(
                DataSet.tenant_id == tenant_id, _words(DataSet.name, words, any_word))))
        elif key == "tags":
            conditions.append(_of_sets(_some_tag, words, any_word))
        elif key == "parentName":
            conditions.append(_of_sets(_some_parent, words, any_word))
    if detail.id_lower is not None:
        conditions.append(Run.id >= detail.id_lower)
    if detail.id_upper is not None:
        conditions.append(Run.id <= detail.id_upper)
    if detail.started_at_lower:
        conditions.append(Run.created_at >= parse_when(detail.started_at_lower, "StartedAtLower"))
    if detail.started_at_upper:
        day = parse_when(detail.started_at_upper, "StartedAtUpper").date()
        if day != date.max:  # no day after it: every run is up to then
            conditions.append(Run.created_at < datetime.combine(day, datetime.min.time()) + timedelta(days=1))
    return conditions


def search_query(detail: SearchDetail, tenant_id: int, kind: str = TRAINING.name):
    """SELECT the runs of ``kind`` in the tenant matching ``detail``, newest first."""
    return (select(Run).where(Run.tenant_id == tenant_id, Run.kind == kind, *search_conditions(detail, tenant_id))
            .order_by(Run.id.desc()))


def search_fill(db, tenant_id: int, kind: str = TRAINING.name) -> dict:
    """TrainingSearchFillOutputModel: who started, the statuses, tags and dataset names of the tenant's runs.

    Each list is distinct and sorted (the original's was in no stated order);
    a run without a dataset adds no name.
    """
    mine = select(Run.id).where(Run.tenant_id == tenant_id, Run.kind == kind)

    def distinct(column, *where):
        query = select(column).where(column.is_not(None), *where).distinct().order_by(column)
        return list(db.scalars(query))

    return {
        "createdBy": distinct(Run.created_by, Run.tenant_id == tenant_id, Run.kind == kind),
        "status": distinct(Run.status, Run.tenant_id == tenant_id, Run.kind == kind),
        "tags": distinct(RunTag.tag, RunTag.run_id.in_(mine)),
        "datasets": distinct(DataSet.name, DataSet.tenant_id == tenant_id,
                             DataSet.id.in_(select(Run.dataset_id).where(Run.tenant_id == tenant_id,
                                                                         Run.kind == kind))),
    }


# saved searches ---------------------------------------------------------------------------------


def history_model(row: TrainingSearchHistory) -> dict:
    """SearchHistoryOutputModel."""
    return {"id": row.id, "name": row.name, "searchDetail": json.loads(row.detail_json), **audit_model(row)}


def list_histories(db, tenant_id: int, user_id: int) -> list[TrainingSearchHistory]:
    return list(db.scalars(select(TrainingSearchHistory).where(
        TrainingSearchHistory.tenant_id == tenant_id, TrainingSearchHistory.user_id == user_id)
        .order_by(TrainingSearchHistory.id)))


def create_history(db, tenant_id: int, user_id: int, actor: str, body) -> TrainingSearchHistory:
    """Check a SearchHistoryInputModel (``name`` of 4-256 characters) and save it (committed)."""
    if not isinstance(body, dict):
        raise InvalidInput("request body must be a JSON object")
    name = body.get("name")
    if name is None:
        raise InvalidInput("Missing field name")
    if not isinstance(name, str):
        raise InvalidInput("Field name must be a string")
    no_control_characters(name, "Field name")
    name = name.strip()
    if not MIN_HISTORY_NAME <= len(name) <= MAX_HISTORY_NAME:
        raise InvalidInput(f"Field name must be {MIN_HISTORY_NAME} to {MAX_HISTORY_NAME} characters long")
    detail = SearchDetail.from_model(body.get("searchDetailInputModel"))
    row = TrainingSearchHistory(tenant_id=tenant_id, user_id=user_id, name=name,
                                detail_json=json.dumps(detail.model(), ensure_ascii=False),
                                created_by=actor, modified_by=actor)
    db.add(row)
    db.commit()
    return row


def find_history(db, tenant_id: int, user_id: int, history_id: int) -> TrainingSearchHistory:
    row = db.get(TrainingSearchHistory, history_id)
    if row is None or row.tenant_id != tenant_id or row.user_id != user_id:
        raise NotFound(f"SearchHistory {history_id} not found")
    return row
