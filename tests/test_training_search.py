"""The detailed search of trainings: the query builder hub-free, then the v2 routes on the platform.

The seeded world (in-memory SQLite): tenant 1 with three trainings and an
inference, tenant 2 with one training of its own.

====  ============  =======  =========  =========  ==========  =======  ================
id    name          by       memo       status     dataset     tags     parents
====  ============  =======  =========  =========  ==========  =======  ================
1     resnet-base   alice    first try  Completed  cats        cats,v1
2     resnet-large  bob      (none)     Failed     dogs        dogs     1
3     vit-small     alice    Try again  Running    (none)      (none)   1, 2
4     resnet-inf    alice    (an inference: never a training)
5     resnet-their  zed      (tenant 2)
====  ============  =======  =========  =========  ==========  =======  ================

Created 2026-01-10 12:00, 2026-01-20 08:00 and 2026-01-31 23:59 (UTC).
"""

from __future__ import annotations

from datetime import datetime

import pytest
from conftest import submit, unique, wait_for
from sqlalchemy import select
from sqlalchemy.pool import StaticPool

from kqi_services import orm
from kqi_services.db import make_engine, make_session_factory, upgrade
from kqi_services.errors import InvalidInput, NotFound
from kqi_services.jobs import search
from kqi_services.jobs.search import SearchDetail
from kqi_services.orm import DataSet, Membership, Run, RunParent, RunTag, StorageEndpoint, Tenant, User


def seed(session) -> None:
    session.add(StorageEndpoint(id=1, name="local", kind="local", server_url="file:///o", access_key="",
                                secret_key_encrypted=b""))
    session.flush()
    session.add_all([Tenant(id=1, name="lab", display_name="Lab", storage_id=1),
                     Tenant(id=2, name="other", display_name="Other", storage_id=1)])
    session.flush()
    for user_id, name, tenant_id in ((1, "alice", 1), (2, "bob", 1), (3, "zed", 2)):
        user = User(id=user_id, name=name, password_hash=None)
        user.memberships.append(Membership(tenant_id=tenant_id, is_default=True))
        session.add(user)
    session.add_all([DataSet(id=1, tenant_id=1, display_id=1, name="cats"),
                     DataSet(id=2, tenant_id=1, display_id=2, name="dogs"),
                     DataSet(id=3, tenant_id=2, display_id=1, name="cats")])
    session.flush()
    common = dict(entry_point="python train.py", cpu=1, memory=1, display_id=1)
    session.add_all([
        Run(id=1, kind="training", tenant_id=1, name="resnet-base", created_by="alice", memo="first try",
            status="Completed", dataset_id=1, created_at=datetime(2026, 1, 10, 12), tags=[RunTag(tag="cats"),
                                                                                      RunTag(tag="v1")], **common),
        Run(id=2, kind="training", tenant_id=1, name="resnet-large", created_by="bob", status="Failed",
            dataset_id=2, created_at=datetime(2026, 1, 20, 8), tags=[RunTag(tag="dogs")],
            parents=[RunParent(parent_id=1)], **common),
        Run(id=3, kind="training", tenant_id=1, name="vit-small", created_by="alice", memo="Try again",
            status="Running", created_at=datetime(2026, 1, 31, 23, 59),
            parents=[RunParent(parent_id=1, position=0), RunParent(parent_id=2, position=1)],
            **{**common, "entry_point": "python vit.py --small"}),
        Run(id=4, kind="inference", tenant_id=1, name="resnet-inf", created_by="alice", status="Completed",
            dataset_id=1, created_at=datetime(2026, 1, 12), tags=[RunTag(tag="cats")], **common),
        Run(id=5, kind="training", tenant_id=2, name="resnet-their", created_by="zed", status="Killed",
            dataset_id=3, created_at=datetime(2026, 1, 12), tags=[RunTag(tag="cats")], **common),
    ])
    session.commit()


@pytest.fixture
def db():
    engine = make_engine("sqlite://", poolclass=StaticPool)
    orm.Base.metadata.create_all(engine)
    session = make_session_factory(engine)()
    seed(session)
    yield session
    session.close()
    engine.dispose()


def ids(db, tenant_id=1, **query) -> list[int]:
    detail = SearchDetail.from_query(lambda name: query.get(name))
    return [r.id for r in db.scalars(search.search_query(detail, tenant_id))]


@pytest.mark.parametrize("query, expected", [
    ({}, [3, 2, 1]),
    ({"Name": "resnet"}, [2, 1]),
    ({"Name": "RESNET"}, [2, 1]),  # case-insensitive, as the list's filters
    ({"Name": "large,vit"}, [3, 2]),  # OR by default
    ({"Name": "large,vit", "NameOr": "true"}, [3, 2]),
    ({"Name": "resnet,large", "NameOr": "false"}, [2]),
    ({"Name": " resnet , large ", "NameOr": "False"}, [2]),  # words are trimmed
    ({"Name": "resnet,,", "NameOr": "true"}, [2, 1]),  # empty words are dropped, not "match all"
    ({"Name": ",,"}, [3, 2, 1]),
    ({"Name": "!resnet"}, []),  # no negation in the detailed search
    ({"StartedBy": "ali"}, [3, 1]),
    ({"StartedBy": "alice,bob", "StartedByOr": "false"}, []),
    ({"Memo": "try"}, [3, 1]),  # a run without a memo never matches
    ({"Memo": "first,try", "MemoOr": "false"}, [1]),
    ({"Status": "Complete,Fail"}, [2, 1]),
    ({"Status": "running"}, [3]),
    ({"EntryPoint": "vit.py"}, [3]),
    ({"EntryPoint": "python,--small", "EntryPointOr": "false"}, [3]),
    ({"DataSet": "cats"}, [1]),  # tenant 2's "cats" is not ours; run 3 has no dataset
    ({"DataSet": "cats,dogs"}, [2, 1]),
    ({"DataSet": "ca,ts", "DataSetOr": "false"}, [1]),
    ({"DataSet": "cats,dogs", "DataSetOr": "false"}, []),
    ({"Tags": "v"}, [1]),  # a substring of a tag
    ({"Tags": "cat,dog"}, [2, 1]),
    ({"Tags": "cats,v1", "TagsOr": "false"}, [1]),
    ({"Tags": "cats,dogs", "TagsOr": "false"}, []),  # every word in some tag of the same run
    ({"ParentName": "resnet-base"}, [3, 2]),
    ({"ParentName": "large"}, [3]),
    ({"ParentName": "base,large", "ParentNameOr": "false"}, [3]),  # each word in some parent's name
    ({"ParentName": "base,vit", "ParentNameOr": "false"}, []),
    ({"IdLower": "2"}, [3, 2]),
    ({"IdUpper": "2"}, [2, 1]),
    ({"IdLower": "2", "IdUpper": "2"}, [2]),
    ({"StartedAtLower": "2026/01/20"}, [3, 2]),
    ({"StartedAtLower": "2026-01-10T12:30"}, [3, 2]),
    ({"StartedAtLower": "2026-01-10T21:00+09:00"}, [3, 2, 1]),  # 12:00 UTC: run 1 was created then
    ({"StartedAtUpper": "2026-01-20"}, [2, 1]),  # the whole upper day
    ({"StartedAtUpper": "2026-1-31 00:00:00"}, [3, 2, 1]),  # only the upper day counts
    ({"StartedAtLower": "2026-01-11", "StartedAtUpper": "2026-01-30"}, [2]),
    ({"StartedAtUpper": "9999-12-31"}, [3, 2, 1]),
    ({"Name": "resnet", "Status": "Completed"}, [1]),  # the conditions are ANDed
    ({"Name": "resnet", "Tags": "dogs", "IdLower": "1"}, [2]),
])
def test_search_finds_the_tenants_trainings_that_match(db, query, expected):
    assert ids(db, **query) == expected


def test_search_stays_in_its_tenant_and_kind(db):
    assert ids(db, tenant_id=2, Name="resnet") == [5]
    assert ids(db, tenant_id=2, DataSet="cats") == [5]
    assert ids(db, Name="inf") == []


@pytest.mark.parametrize("query, message", [
    ({"IdLower": "abc"}, "IdLower must be an integer"),
    ({"IdUpper": "1.5"}, "IdUpper must be an integer"),
    ({"IdLower": str(2**63)}, "IdLower is out of range"),
    ({"NameOr": "maybe"}, "NameOr must be true or false"),
    ({"StartedAtLower": "yesterday"}, "StartedAtLower 'yesterday' must be a date"),
    ({"StartedAtUpper": "2026-02-30"}, "StartedAtUpper '2026-02-30' must be a date"),
    ({"Name": ",".join(f"w{i}" for i in range(33))}, "Name must have at most 32"),
    ({"Memo": "x" * 1025}, "Memo must be at most 1024"),
])
def test_unreadable_criteria_are_refused_naming_them(query, message):
    with pytest.raises(InvalidInput, match=message):
        SearchDetail.from_query(lambda name: query.get(name))


def test_a_detail_reads_back_from_its_model():
    detail = SearchDetail.from_query({"IdLower": "3", "Name": "a, b", "NameOr": "false", "Tags": "x",
                                      "StartedAtUpper": "2026/01/31"}.get)
    model = detail.model()
    assert list(model) == list(search.DETAIL_KEYS)
    assert model == {**dict.fromkeys(search.DETAIL_KEYS), "idLower": 3, "name": "a, b", "nameOr": False,
                     "tags": "x", "startedAtUpper": "2026/01/31",
                     **{f"{k}Or": True for k in search.WORD_FIELDS if k != "name"}}
    assert SearchDetail.from_model(model) == detail


@pytest.mark.parametrize("body, message", [
    ([], "request body must be a JSON object"),
    ({}, "Missing field name"),
    ({"name": 1234}, "Field name must be a string"),
    ({"name": " abc "}, "Field name must be 4 to 256 characters"),
    ({"name": "x" * 257}, "Field name must be 4 to 256 characters"),
    ({"name": "good", "searchDetailInputModel": "Name=a"}, "searchDetailInputModel must be an object"),
    ({"name": "good", "searchDetailInputModel": {"idLower": "5"}}, "searchDetailInputModel.idLower must be an integer"),
    ({"name": "good", "searchDetailInputModel": {"nameOr": "false"}}, "searchDetailInputModel.nameOr must be a boolean"),
    ({"name": "good", "searchDetailInputModel": {"memo": 5}}, "searchDetailInputModel.memo must be a string"),
    ({"name": "good", "searchDetailInputModel": {"startedAtLower": "soon"}}, "startedAtLower 'soon' must be a date"),
])
def test_a_bad_saved_search_is_refused(db, body, message):
    with pytest.raises(InvalidInput, match=message):
        search.create_history(db, 1, 1, "alice", body)
    assert search.list_histories(db, 1, 1) == []


def test_saved_searches_are_one_users_in_one_tenant(db):
    row = search.create_history(db, 1, 1, "alice", {"name": "my cats", "searchDetailInputModel": {
        "tags": "cats", "tagsOr": False, "idUpper": 10}})
    model = search.history_model(row)
    assert model["name"] == "my cats" and model["createdBy"] == "alice" and model["createdAt"].endswith("Z")
    assert model["searchDetail"]["tags"] == "cats" and model["searchDetail"]["tagsOr"] is False
    assert model["searchDetail"]["idUpper"] == 10 and model["searchDetail"]["memoOr"] is True
    assert SearchDetail.from_model(model["searchDetail"]) == SearchDetail.from_query(
        {"Tags": "cats", "TagsOr": "false", "IdUpper": "10"}.get)
    empty = search.create_history(db, 1, 1, "alice", {"name": "everything"})
    assert search.history_model(empty)["searchDetail"] == SearchDetail().model()
    assert [h.id for h in search.list_histories(db, 1, 1)] == [row.id, empty.id]
    assert search.list_histories(db, 1, 2) == [] and search.list_histories(db, 2, 1) == []
    assert search.find_history(db, 1, 1, row.id) is row
    for tenant_id, user_id in ((1, 2), (2, 1), (2, 3)):
        with pytest.raises(NotFound):
            search.find_history(db, tenant_id, user_id, row.id)


def test_fill_lists_what_the_tenants_trainings_hold(db):
    assert search.search_fill(db, 1) == {"createdBy": ["alice", "bob"], "status": ["Completed", "Failed", "Running"],
                                         "tags": ["cats", "dogs", "v1"], "datasets": ["cats", "dogs"]}
    assert search.search_fill(db, 2) == {"createdBy": ["zed"], "status": ["Killed"], "tags": ["cats"],
                                         "datasets": ["cats"]}


@pytest.mark.db
def test_search_on_a_migrated_database(db_url):
    """The same queries on a database Alembic made (0008), SQLite and PostgreSQL."""
    upgrade(db_url)
    engine = make_engine(db_url)
    with make_session_factory(engine)() as session:
        seed(session)
        assert ids(session, Name="RESNET,vit", Memo="try") == [3, 1]
        assert ids(session, Tags="cats,v1", TagsOr="false", DataSet="cat") == [1]
        assert ids(session, ParentName="base,large", ParentNameOr="false", StartedAtUpper="2026-01-31") == [3]
        assert search.search_fill(session, 1)["datasets"] == ["cats", "dogs"]
        row = search.create_history(session, 1, 1, "alice", {"name": "mine", "searchDetailInputModel": None})
        assert search.find_history(session, 1, 1, row.id).name == "mine"
        session.delete(session.get(User, 1))  # a user's saved searches go with them
        session.commit()
        assert session.scalars(select(orm.TrainingSearchHistory)).all() == []
    engine.dispose()


# the platform ----------------------------------------------------------------------------------


@pytest.mark.platform
def test_search_history_and_fill_on_the_platform(platform, lab, new_user):
    api = lab["api"]
    first = submit(lab, "true", name=unique("alpha")[:30], memo="baseline run", tags=["base", "v1"])
    second = submit(lab, "true", name=unique("beta")[:30], memo="tuned run", tags=["tuned"],
                    parentIds=[first["id"]])
    for run in (first, second):
        assert wait_for(api, run["id"])["status"] == "Completed"

    r = api.get("/training/search", params={"Memo": "baseline,tuned", "withTotal": "true"})
    assert r.status_code == 200, r.text
    assert [t["id"] for t in r.json()] == [second["id"], first["id"]]
    assert r.headers["X-Total-Count"] == "2"
    assert r.json()[0] == api.get("/training").json()[0]  # the list's IndexOutputModel
    assert [t["id"] for t in api.get("/training/search", params={"Memo": "tuned,run", "MemoOr": "false"}).json()] \
        == [second["id"]]
    assert [t["id"] for t in api.get("/training/search", params={"ParentName": "alpha", "Tags": "tun"}).json()] \
        == [second["id"]]
    paged = api.get("/training/search", params={"perPage": 1, "page": 2})
    assert [t["id"] for t in paged.json()] == [first["id"]] and paged.headers["X-Total-Count"] == "2"
    for params, message in (({"IdLower": "one"}, "IdLower must be an integer"),
                            ({"StartedAtUpper": "2026-13-01"}, "must be a date"),
                            ({"TagsOr": "yes"}, "TagsOr must be true or false")):
        r = api.get("/training/search", params=params)
        assert r.status_code == 400 and message in r.json()["message"], r.text

    fill = api.get("/training/search/fill").json()
    assert fill == {"createdBy": [lab["user"]["name"]], "status": ["Completed"], "tags": ["base", "tuned", "v1"],
                    "datasets": [lab["dataset"]["name"]]}

    r = api.post("/training/search-history", {"name": "abc"})
    assert r.status_code == 400 and "name must be 4 to 256" in r.json()["message"], r.text
    r = api.post("/training/search-history", {"name": "tuned ones", "searchDetailInputModel": {
        "memo": "tuned", "memoOr": True, "idLower": first["id"]}})
    assert r.status_code == 201, r.text
    saved = r.json()
    assert set(saved) == {"id", "name", "searchDetail", "createdBy", "createdAt", "modifiedBy", "modifiedAt"}
    assert saved["createdBy"] == lab["user"]["name"] and saved["searchDetail"]["memo"] == "tuned"
    assert api.get("/training/search-history").json() == [saved]

    other = new_user([{"id": lab["tenant"]["id"]}])
    theirs = platform.api().login(other["name"], other["password"])
    assert theirs.get("/training/search-history").json() == []
    r = theirs.delete(f"/training/search-history/{saved['id']}")
    assert r.status_code == 404, r.text
    assert [t["id"] for t in theirs.get("/training/search", params={"Memo": "tuned"}).json()] == [second["id"]]

    assert api.delete(f"/training/search-history/{saved['id']}").status_code == 204
    assert api.get("/training/search-history").json() == []
    assert api.delete(f"/training/search-history/{saved['id']}").status_code == 404
    assert api.get(f"/training/{first['id']}").json()["id"] == first["id"]  # training/{id} is still itself
