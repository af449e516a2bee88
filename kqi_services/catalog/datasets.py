"""Dataset core: data arranged by data type (training/validation/testing) or flat.

Entries arrive as the contract has them: ``entries`` maps a data type name to
a list of ``{"id": dataId}``, ``flatEntries`` is such a list. Once a run used
a dataset (``mark_used``) its entries are locked; name and memo stay editable.
"""

from __future__ import annotations

from sqlalchemy import select

from kqi_services import validation as v
from kqi_services.catalog.data import get_data, next_display_id
from kqi_services.errors import Conflict, InvalidInput, NotFound
from kqi_services.listing import apply_standard_filters
from kqi_services.orm import DataSet, DataSetEntry, DataType, Tenant


def data_types(db) -> list[DataType]:
    return db.scalars(select(DataType).order_by(DataType.sort_order, DataType.id)).all()


def get_dataset(db, tenant: Tenant, dataset_id: int) -> DataSet:
    dataset = db.get(DataSet, dataset_id)
    if dataset is None or dataset.tenant_id != tenant.id:
        raise NotFound(f"Dataset {dataset_id} not found")
    return dataset


def query_datasets(tenant: Tenant, args: dict):
    query = select(DataSet).where(DataSet.tenant_id == tenant.id)
    return apply_standard_filters(query, DataSet, args).order_by(DataSet.id.desc())


def _entry_ids(items, what) -> list[int]:
    if not isinstance(items, list):
        raise InvalidInput(f"{what} must be a list of {{\"id\": dataId}}")
    ids = []
    for item in items:
        if not isinstance(item, dict):
            raise InvalidInput(f"{what} must be a list of {{\"id\": dataId}}")
        ids.append(v.integer(item, "id", required=True))
    if len(set(ids)) != len(ids):
        raise InvalidInput(f"{what} lists the same data twice")
    return ids


def parse_entries(db, tenant: Tenant, body: dict, flat: bool) -> list[tuple[int | None, int]]:
    """The body's entries as (data type id or None for flat, data id), all checked."""
    pairs: list[tuple[int | None, int]] = []
    if flat:
        flat_entries = body.get("flatEntries")
        for data_id in _entry_ids([] if flat_entries is None else flat_entries, "flatEntries"):
            pairs.append((None, data_id))
    else:
        entries = body.get("entries")
        entries = {} if entries is None else entries
        if not isinstance(entries, dict):
            raise InvalidInput("entries must be an object mapping a data type to a list of {\"id\": dataId}")
        types = {t.name: t.id for t in data_types(db)}
        for type_name, items in entries.items():
            if type_name not in types:
                raise InvalidInput(f"Unknown data type {type_name!r}; one of: {', '.join(types)}")
            for data_id in _entry_ids(items, f"entries.{type_name}"):
                pairs.append((types[type_name], data_id))
    for _, data_id in pairs:
        get_data(db, tenant, data_id)
    return pairs


def _set_entries(dataset: DataSet, pairs) -> None:
    dataset.entries = [DataSetEntry(data_type_id=t, data_id=d) for t, d in pairs]


def create_dataset(db, tenant: Tenant, body, actor: str) -> DataSet:
    v.require_object(body)
    flat = v.boolean(body, "isFlat")
    if "entries" not in body and not flat:
        raise InvalidInput("Missing field entries")
    dataset = DataSet(tenant_id=tenant.id, display_id=next_display_id(db, DataSet, tenant.id),
                      created_by=actor, modified_by=actor, is_flat=flat)
    dataset.name = v.string(body, "name", required=True, max_length=256)
    dataset.memo = v.string(body, "memo", max_length=4096)
    _set_entries(dataset, parse_entries(db, tenant, body, flat))
    db.add(dataset)
    db.flush()
    return dataset


def edit_meta(dataset: DataSet, body, actor: str) -> None:
    """PATCH: name and memo, allowed at any time."""
    v.require_object(body)
    if body.get("name") is not None:
        dataset.name = v.string(body, "name", required=True, max_length=256)
    if "memo" in body:
        dataset.memo = v.string(body, "memo", max_length=4096)
    dataset.modified_by = actor


def replace_entries(db, tenant: Tenant, dataset: DataSet, body, actor: str) -> None:
    """PUT {name, memo, entries, flatEntries}: refused once a run has used the dataset."""
    v.require_object(body)
    if dataset.is_locked:
        raise Conflict(f"Dataset {dataset.id} has been used by a run; its entries cannot change. "
                       "Copy it into a new dataset instead.")
    pairs = parse_entries(db, tenant, body, dataset.is_flat)
    edit_meta(dataset, body, actor)
    _set_entries(dataset, pairs)
    db.flush()


def delete_dataset(db, dataset: DataSet) -> None:
    if dataset.is_locked:
        raise Conflict(f"Dataset {dataset.id} has been used by a run and is kept with it")
    db.delete(dataset)
    db.flush()


def mark_used(dataset: DataSet) -> None:
    """Record that a run used the dataset: from now on its entries are fixed."""
    dataset.is_locked = True


def entries_by_type(db, dataset: DataSet) -> dict[str | None, list[int]]:
    """{type name (None when flat): [data ids]} in entry order."""
    names = {t.id: t.name for t in data_types(db)}
    result: dict[str | None, list[int]] = {}
    for entry in dataset.entries:
        result.setdefault(names.get(entry.data_type_id), []).append(entry.data_id)
    return result
