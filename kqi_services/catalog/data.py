"""Data core: named file sets of a tenant, their tags and registered files.

Every lookup is scoped to a tenant: another tenant's id is NotFound, never
Forbidden, so ids of other tenants cannot be probed.
"""

from __future__ import annotations

from sqlalchemy import exists, func, select
from sqlalchemy.orm import selectinload

from kqi_services import validation as v
from kqi_services.errors import Conflict, InvalidInput, NotFound
from kqi_services.listing import apply_standard_filters
from kqi_services.orm import Data, DataFile, DataSetEntry, DataTag, RunFile, Tenant, Upload

MAX_FILES_PER_DATA = 10_000


def next_display_id(db, model, tenant_id: int) -> int:
    return (db.scalar(select(func.max(model.display_id)).where(model.tenant_id == tenant_id)) or 0) + 1


def get_data(db, tenant: Tenant, data_id: int) -> Data:
    data = db.get(Data, data_id)
    if data is None or data.tenant_id != tenant.id:
        raise NotFound(f"Data {data_id} not found")
    return data


def query_data(tenant: Tenant, args: dict, tags: list[str]):
    """The tenant's data matching the list filters, newest first, their tags loaded in one more query."""
    query = select(Data).where(Data.tenant_id == tenant.id).options(selectinload(Data.tags))
    query = apply_standard_filters(query, Data, args)
    for tag in tags:
        query = query.where(exists().where(DataTag.data_id == Data.id, DataTag.tag == tag))
    return query.order_by(Data.id.desc())


def create_data(db, tenant: Tenant, body, actor: str) -> Data:
    v.require_object(body)
    data = Data(tenant_id=tenant.id, display_id=next_display_id(db, Data, tenant.id), created_by=actor,
                modified_by=actor, is_raw=True)
    data.name = v.string(body, "name", required=True, max_length=256)
    data.memo = v.string(body, "memo", max_length=4096)
    data.tags = [DataTag(tag=t) for t in v.tags(body)]
    db.add(data)
    db.flush()
    return data


def update_data(db, data: Data, body, actor: str) -> Data:
    """EditInputModel: fields left out keep their value; ``tags`` replaces the tags."""
    v.require_object(body)
    if body.get("name") is not None:
        data.name = v.string(body, "name", required=True, max_length=256)
    if "memo" in body:
        data.memo = v.string(body, "memo", max_length=4096)
    if body.get("tags") is not None:
        data.tags = [DataTag(tag=t) for t in v.tags(body)]
    data.modified_by = actor
    db.flush()
    return data


def add_tag(data: Data, tag: str, actor: str) -> None:
    v.check_tag(tag)
    if tag not in [t.tag for t in data.tags]:
        data.tags.append(DataTag(tag=tag))
    data.modified_by = actor


def remove_tag(data: Data, tag: str) -> None:
    data.tags = [t for t in data.tags if t.tag != tag]


def used_by_dataset(db, data: Data) -> bool:
    return db.scalar(select(DataSetEntry.id).where(DataSetEntry.data_id == data.id).limit(1)) is not None


def delete_data(db, data: Data) -> list[str]:
    """Delete a data item; return the stored paths whose bytes the caller may now drop."""
    if used_by_dataset(db, data):
        raise Conflict(f"Data {data.id} is used by a dataset; remove it from the dataset first")
    paths = [f.stored_path for f in data.files]
    db.delete(data)
    db.flush()
    return paths


def parse_new_files(body) -> list[tuple[str, str]]:
    """AddFilesInputModel → [(fileName, storedPath)], checked."""
    v.require_object(body)
    items = v.object_list(body, "files", required=True)
    if not items:
        raise InvalidInput("files must list at least one file")
    parsed = []
    for item in items:
        name = v.safe_file_name(v.field(item, "fileName", str, required=True))
        stored = v.string(item, "storedPath", required=True, max_length=1024, strip=False)
        parsed.append((name, stored))
    names = [n for n, _ in parsed]
    if len(set(names)) != len(names):
        raise Conflict("The same fileName is listed twice")
    return parsed


def completed_upload(db, tenant: Tenant, stored_path: str) -> Upload:
    """The finished upload behind ``stored_path``; InvalidInput unless this tenant completed it."""
    upload = db.scalar(select(Upload).where(Upload.stored_path == stored_path))
    if upload is None or upload.tenant_id != tenant.id:
        raise InvalidInput(f"storedPath {stored_path!r} was not issued to this tenant")
    if upload.completed_at is None:
        raise InvalidInput(f"The upload of {stored_path!r} is not complete")
    return upload


def stored_path_in_use(db, stored_path: str) -> bool:
    """Whether a data file or a run's attached file still names these bytes."""
    return any(db.scalar(select(model.id).where(model.stored_path == stored_path).limit(1)) is not None
               for model in (DataFile, RunFile))


def add_files(db, tenant: Tenant, data: Data, files: list[tuple[str, str]], actor: str) -> list[DataFile]:
    """Register uploaded files: each stored path must come from a completed upload of this tenant."""
    existing = set(db.scalars(select(DataFile.file_name).where(DataFile.data_id == data.id)))
    if len(existing) + len(files) > MAX_FILES_PER_DATA:
        raise InvalidInput(f"A data item holds at most {MAX_FILES_PER_DATA} files")
    added = []
    for name, stored_path in files:
        if name in existing:
            raise Conflict(f"Data {data.id} already has a file named {name!r}")
        upload = completed_upload(db, tenant, stored_path)
        row = DataFile(data_id=data.id, file_name=name, stored_path=stored_path, size=upload.size or 0,
                       sha256=upload.sha256, created_by=actor, modified_by=actor)
        db.add(row)
        added.append(row)
    data.modified_by = actor
    db.flush()
    return added


def get_file(db, data: Data, file_id: int) -> DataFile:
    row = db.get(DataFile, file_id)
    if row is None or row.data_id != data.id:
        raise NotFound(f"File {file_id} not found in data {data.id}")
    return row
