"""Staging a dataset for a run: the /kqi/input layout by hard links from the local store."""

import os
import stat

import pytest

from kqi_services.accounts.secretbox import SecretBox
from kqi_services.catalog import data as data_core
from kqi_services.catalog import datasets as dataset_core
from kqi_services.db import make_engine, make_session_factory, upgrade
from kqi_services.jobs.nodes import NodeCapacity
from kqi_services.jobs.staging import data_layout, dataset_layout, stage
from kqi_services.orm import Tenant, Upload, utcnow
from kqi_services.seed import seed_defaults
from kqi_services.storage.local import LocalStore


@pytest.fixture
def world(tmp_path):
    url = "sqlite:///" + str(tmp_path / "kqi.sqlite")
    upgrade(url)
    engine = make_engine(url)
    db = make_session_factory(engine)()
    seed_defaults(db, SecretBox.from_key_file(str(tmp_path / "key")), NodeCapacity("n", 1, 1), str(tmp_path))
    db.commit()
    store = LocalStore(str(tmp_path / "objects"), "secret")
    tenant = Tenant.find_by_name(db, "default")
    yield db, store, tenant
    db.close()
    engine.dispose()


def put(db, store, tenant, data, name, content: bytes):
    ticket = store.begin_upload("default/data", name, 1 if content else 0, "http://x")
    etags = {1: store.write_part(ticket.upload_id, 1, content)} if content else {}
    stored = store.complete_upload(ticket.key, ticket.upload_id, etags)
    db.add(Upload(upload_id=ticket.upload_id, tenant_id=tenant.id, storage_id=1, key=ticket.key,
                  stored_path=ticket.stored_path, file_name=name, resource_type="Data", completed_at=utcnow(),
                  size=stored.size, sha256=stored.sha256))
    db.flush()
    data_core.add_files(db, tenant, data, [(name, ticket.stored_path)], "t")


def test_typed_and_flat_layouts_are_hard_links(world, tmp_path):
    db, store, tenant = world
    d1 = data_core.create_data(db, tenant, {"name": "d1"}, "t")
    d2 = data_core.create_data(db, tenant, {"name": "d2"}, "t")
    put(db, store, tenant, d1, "a.txt", b"alpha")
    put(db, store, tenant, d1, "empty", b"")
    put(db, store, tenant, d2, "b.txt", b"beta")
    ds = dataset_core.create_dataset(db, tenant, {"name": "ds", "entries": {
        "training": [{"id": d1.id}], "testing": [{"id": d2.id}]}}, "t")
    flat = dataset_core.create_dataset(db, tenant, {"name": "f", "isFlat": True,
                                                    "flatEntries": [{"id": d1.id}, {"id": d2.id}]}, "t")
    db.commit()

    out = tmp_path / "input"
    assert stage(dataset_layout(db, ds), store, str(out)) == 3
    assert (out / "training" / str(d1.id) / "a.txt").read_bytes() == b"alpha"
    assert (out / "training" / str(d1.id) / "empty").read_bytes() == b""
    assert (out / "testing" / str(d2.id) / "b.txt").read_bytes() == b"beta"
    staged = os.stat(out / "training" / str(d1.id) / "a.txt")
    source = os.stat(store.local_path(d1.files[0].stored_path))
    assert staged.st_ino == source.st_ino  # a hard link, not a copy
    assert not staged.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)

    flat_out = tmp_path / "flat"
    stage(dataset_layout(db, flat), store, str(flat_out))
    assert sorted(str(p.relative_to(flat_out)) for p in flat_out.rglob("*") if p.is_file()) == sorted(
        [f"{d1.id}/a.txt", f"{d1.id}/empty", f"{d2.id}/b.txt"])

    pre = tmp_path / "pre"
    stage(data_layout(db, [d2.id]), store, str(pre))
    assert (pre / str(d2.id) / "b.txt").read_bytes() == b"beta"
