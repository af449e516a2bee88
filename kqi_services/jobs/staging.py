"""Staging for runs: lay a dataset out under a directory as ``/kqi/input`` shows it.

One layout rule serves the path pairs of the API and the staging of runs and
notebooks: ``{type}/{dataId}/{file}`` for datasets with data types,
``{dataId}/{file}`` for flat datasets and for preprocessing inputs. From the
local store files are hard-linked (no copies; the store keeps objects
read-only, and runs get the staged tree mounted read-only); from other stores
they are streamed in parallel from their signed URLs.
"""

from __future__ import annotations

import errno
import os
import shutil
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import select

from kqi_services.catalog.datasets import entries_by_type
from kqi_services.orm import DataFile, DataSet

DOWNLOAD_WORKERS = 8
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StagedFile:
    relative_path: str
    stored_path: str
    file_name: str
    size: int


def data_files(db, data_ids: list[int]) -> dict[int, list[tuple[str, str, int]]]:
    """{data id: [(file name, stored path, size)]} in one query."""
    rows = db.execute(
        select(DataFile.data_id, DataFile.file_name, DataFile.stored_path, DataFile.size)
        .where(DataFile.data_id.in_(data_ids)).order_by(DataFile.id)
    ).all() if data_ids else []
    by_data: dict[int, list[tuple[str, str, int]]] = {}
    for data_id, name, stored, size in rows:
        by_data.setdefault(data_id, []).append((name, stored, size))
    return by_data


def dataset_layout(db, dataset: DataSet) -> list[StagedFile]:
    """Every file of the dataset with the path it has under /kqi/input."""
    groups = entries_by_type(db, dataset)
    files = data_files(db, sorted({d for ids in groups.values() for d in ids}))
    layout = []
    for type_name, data_ids in groups.items():
        for data_id in data_ids:
            prefix = f"{type_name}/{data_id}" if type_name else str(data_id)
            for name, stored, size in files.get(data_id, []):
                layout.append(StagedFile(f"{prefix}/{name}", stored, name, size))
    return layout


def data_layout(db, data_ids: list[int]) -> list[StagedFile]:
    """The preprocessing layout of a list of data: ``{dataId}/{file}``."""
    files = data_files(db, data_ids)
    return [StagedFile(f"{d}/{name}", stored, name, size) for d in data_ids for name, stored, size in files.get(d, [])]


def stage(layout: list[StagedFile], store, dest: str, url_base: str = "") -> int:
    """Materialise ``layout`` under ``dest``; return the number of files.

    Hard links when the store is on this disk, else parallel streaming
    downloads from the store's signed URLs (``url_base`` is the service URL
    those are built on).
    """
    os.makedirs(dest, exist_ok=True)
    made = set()
    remote = []
    for item in layout:
        target = os.path.join(dest, item.relative_path)
        parent = os.path.dirname(target)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        source = store.local_path(item.stored_path)
        if source is None:
            remote.append((item, target))
            continue
        try:
            os.link(source, target)
        except OSError as e:
            if e.errno not in (errno.EMLINK, errno.EXDEV):
                raise
            # too many links to one object (or another filesystem): copy this one
            shutil.copyfile(source, target)
    if remote:
        with ThreadPoolExecutor(DOWNLOAD_WORKERS) as pool:
            list(pool.map(lambda job: _download(store, job[0], job[1], url_base), remote))
    return len(layout)


def _download(store, item: StagedFile, target: str, url_base: str) -> None:
    url = store.download_url(item.stored_path, item.file_name, url_base)
    tmp = target + ".part"
    with urllib.request.urlopen(url, timeout=300) as response, open(tmp, "wb") as out:
        shutil.copyfileobj(response, out, CHUNK)
    os.replace(tmp, target)
