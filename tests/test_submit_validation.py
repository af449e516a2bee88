"""The submit use case's refusals, hub-free, on an in-memory SQLite database.

Each bad CreateInputModel (``POST /api/v2/training/run``, and a notebook's
``POST /api/v2/notebook/run`` for ``expiresIn``) must be refused with the
domain error its HTTP status comes from (InvalidInput → 400, NotFound → 404)
and a message naming what is wrong, and must queue nothing. A few good bodies
are queued as Pending runs with the fields they asked for.

The seeded world: tenant ``lab`` (quota cpu 8, memory 100 GB, gpu 2; git
endpoints 1 and 2, registry 1, dataset 1, a Completed training 1 and an
inference 2), tenant ``other`` (git endpoint 3, registry 2, dataset 2,
training 3), a public node ``node-a`` (partition ``default``: cpu 16, memory
64 GB, gpu 4) and a node private to ``other`` (partition ``secret``).
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.pool import StaticPool

from kqi_services import orm
from kqi_services.db import make_engine, make_session_factory
from kqi_services.errors import InvalidInput, NotFound
from kqi_services.jobs import gitmodel, submission
from kqi_services.jobs.kinds import NOTEBOOK, TRAINING
from kqi_services.orm import (
    DataSet,
    DataSetEntry,
    DataType,
    GitEndpoint,
    Membership,
    Node,
    RegistryEndpoint,
    Run,
    StorageEndpoint,
    Tenant,
    TenantGit,
    TenantRegistry,
    User,
)

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def submit(db, kind, tenant, user, body) -> Run:
    """The use case under test: check ``body`` and queue it (committed). One line to switch."""
    return submission.submit_run(db, kind, tenant, user, body)


def seed(db) -> None:
    db.add(StorageEndpoint(id=1, name="local", kind="local", server_url="file:///objects", access_key="",
                           secret_key_encrypted=b""))
    db.add_all([
        GitEndpoint(id=1, name="GitHub", service_type=2, repository_url="https://github.com",
                    api_url="https://api.github.com"),
        GitEndpoint(id=2, name="local", service_type=0, repository_url="file:///repos", api_url="file:///"),
        GitEndpoint(id=3, name="theirs", service_type=0, repository_url="file:///theirs", api_url="file:///"),
        RegistryEndpoint(id=1, name="docker-hub", host="registry-1.docker.io", port_no=443, service_type=2,
                         project_name="", api_url="https://registry.hub.docker.com/",
                         registry_url="https://registry-1.docker.io/"),
        RegistryEndpoint(id=2, name="theirs", host="registry.example.com", port_no=443, service_type=2,
                         project_name="", api_url="https://registry.example.com/",
                         registry_url="https://registry.example.com/"),
        DataType(id=1, name="training", sort_order=1),
    ])
    db.flush()
    db.add_all([
        Tenant(id=1, name="lab", display_name="Lab", storage_id=1, default_git_id=2, default_registry_id=1,
               quota_cpu=8, quota_memory=100, quota_gpu=2, gits=[TenantGit(git_id=1), TenantGit(git_id=2)],
               registries=[TenantRegistry(registry_id=1)]),
        Tenant(id=2, name="other", display_name="Other", storage_id=1, default_git_id=3, default_registry_id=2,
               gits=[TenantGit(git_id=3)], registries=[TenantRegistry(registry_id=2)]),
    ])
    db.flush()
    alice = User(id=1, name="alice", password_hash=None)
    alice.memberships.append(Membership(tenant_id=1, is_default=True))
    bob = User(id=2, name="bob", password_hash=None)
    bob.memberships.append(Membership(tenant_id=2, is_default=True))
    db.add_all([alice, bob])
    db.add_all([
        orm.Data(id=1, tenant_id=1, display_id=1, name="inputs"),
        orm.Data(id=2, tenant_id=2, display_id=1, name="theirs"),
    ])
    db.flush()
    db.add_all([
        DataSet(id=1, tenant_id=1, display_id=1, name="ds", entries=[DataSetEntry(data_type_id=1, data_id=1)]),
        DataSet(id=2, tenant_id=2, display_id=1, name="ds", entries=[DataSetEntry(data_type_id=1, data_id=2)]),
        Node(id=1, name="node-a", partition="default", access_level=2, cpu=16, memory_gb=64, gpu=4),
        Node(id=2, name="node-b", partition="secret", access_level=1, cpu=64, memory_gb=512, gpu=8,
             assigned_tenant_ids="2"),
    ])
    db.flush()
    common = dict(entry_point="true", cpu=1, memory=1, gpu=0, status="Completed", phase="ended", queued_order=0)
    db.add_all([
        Run(id=1, kind="training", tenant_id=1, user_id=1, display_id=1, name="parent", **common),
        Run(id=2, kind="inference", tenant_id=1, user_id=1, display_id=1, name="an-inference", **common),
        Run(id=3, kind="training", tenant_id=2, user_id=2, display_id=1, name="theirs", **common),
    ])
    db.commit()


@pytest.fixture
def db():
    engine = make_engine("sqlite://", poolclass=StaticPool)
    orm.Base.metadata.create_all(engine)
    session = make_session_factory(engine)()
    seed(session)
    yield session
    session.close()
    engine.dispose()


def training(**changes) -> dict:
    """A good training body, with ``changes`` (a value of ``...`` removes the field)."""
    body = {"name": "run-1", "containerImage": {"registryId": 1, "image": "python", "tag": "3.11"},
            "dataSetId": 1, "parentIds": [1], "gitModel": {"gitId": 2, "owner": "kqi", "repository": "model",
                                                           "branch": "master", "commitId": COMMIT},
            "entryPoint": "python3 train.py", "options": {"MY_OPTION": "42"}, "cpu": 2, "memory": 4, "gpu": 1,
            "partition": "default", "memo": "a memo", "tags": ["cats", "v1"], "zip": True}
    return _changed(body, changes)


def notebook(**changes) -> dict:
    body = {"name": "nb-1", "cpu": 1, "memory": 1, "gpu": 0, "expiresIn": 3600, "dataSetId": 1}
    return _changed(body, changes)


def _changed(body: dict, changes: dict) -> dict:
    body = {**body, **changes}
    return {k: v for k, v in body.items() if v is not ...}


def git(**changes) -> dict:
    return _changed({"gitId": 2, "owner": "kqi", "repository": "model", "branch": "master", "commitId": COMMIT},
                    changes)


def image(**changes) -> dict:
    return _changed({"registryId": 1, "image": "python", "tag": "3.11"}, changes)


BAD_TRAININGS = [
    # the body and its name
    pytest.param([], InvalidInput, "must be a JSON object", id="body-not-an-object"),
    pytest.param(training(name=...), InvalidInput, "Missing field name", id="name-missing"),
    pytest.param(training(name=""), InvalidInput, "Field name must not be empty", id="name-empty"),
    pytest.param(training(name="Run"), InvalidInput, "lowercase letters, digits or '-'", id="name-upper-case"),
    pytest.param(training(name="run_1"), InvalidInput, "lowercase letters, digits or '-'", id="name-underscore"),
    pytest.param(training(name="r" * 31), InvalidInput, "at most 30 characters", id="name-31-characters"),
    pytest.param(training(name="run\x00"), InvalidInput, "NUL or control characters", id="name-nul"),
    pytest.param(training(name=7), InvalidInput, "Field name must be", id="name-not-a-string"),
    # entryPoint
    pytest.param(training(entryPoint=...), InvalidInput, "Missing field entryPoint", id="entry-point-missing"),
    pytest.param(training(entryPoint=" \n\t "), InvalidInput, "entryPoint must not be empty", id="entry-point-blank"),
    pytest.param(training(entryPoint="echo \x00"), InvalidInput, "NUL or control characters",
                 id="entry-point-nul"),
    pytest.param(training(entryPoint="x" * (64 * 1024 + 1)), InvalidInput, "at most 65536 characters",
                 id="entry-point-too-long"),
    pytest.param(training(entryPoint=["python3"]), InvalidInput, "Field entryPoint must be",
                 id="entry-point-a-list"),
    # resources: types and bounds
    pytest.param(training(cpu=...), InvalidInput, "Missing field cpu", id="cpu-missing"),
    pytest.param(training(cpu=0), InvalidInput, "Field cpu must be at least 1", id="cpu-0"),
    pytest.param(training(cpu=1.5), InvalidInput, "Field cpu must be", id="cpu-float"),
    pytest.param(training(cpu="2"), InvalidInput, "Field cpu must be", id="cpu-string"),
    pytest.param(training(cpu=True), InvalidInput, "Field cpu must be", id="cpu-bool"),
    pytest.param(training(cpu=100_001), InvalidInput, "Field cpu must be at most 100000", id="cpu-above-bound"),
    pytest.param(training(memory=0), InvalidInput, "Field memory must be at least 1", id="memory-0"),
    pytest.param(training(memory=None), InvalidInput, "Field memory must not be null", id="memory-null"),
    pytest.param(training(memory=2**63), InvalidInput, "out of range", id="memory-above-int64"),
    pytest.param(training(gpu=-1), InvalidInput, "Field gpu must be at least 0", id="gpu-negative"),
    pytest.param(training(gpu=1025), InvalidInput, "Field gpu must be at most 1024", id="gpu-above-bound"),
    pytest.param(training(gpu=...), InvalidInput, "Missing field gpu", id="gpu-missing"),
    # quota and nodes
    pytest.param(training(cpu=9), InvalidInput, "above the tenant's quota", id="cpu-over-quota"),
    pytest.param(training(gpu=3), InvalidInput, "above the tenant's quota", id="gpu-over-quota"),
    pytest.param(training(memory=101), InvalidInput, "above the tenant's quota", id="memory-over-quota"),
    pytest.param(training(memory=80), InvalidInput, "No node could ever hold cpu 2, memory 80 GB, gpu 1",
                 id="more-memory-than-any-node"),
    # partition
    pytest.param(training(partition="gpu-large"), InvalidInput, "Unknown partition 'gpu-large'",
                 id="partition-unknown"),
    pytest.param(training(partition="secret"), InvalidInput, "Unknown partition 'secret'",
                 id="partition-of-another-tenants-node"),
    pytest.param(training(partition=3), InvalidInput, "Field partition must be", id="partition-not-a-string"),
    # dataSetId
    pytest.param(training(dataSetId=...), InvalidInput, "Missing field dataSetId", id="dataset-missing"),
    pytest.param(training(dataSetId=2), NotFound, "Dataset 2 not found", id="dataset-of-another-tenant"),
    pytest.param(training(dataSetId=999), NotFound, "Dataset 999 not found", id="dataset-unknown"),
    pytest.param(training(dataSetId="1"), InvalidInput, "Field dataSetId must be", id="dataset-id-string"),
    # parentIds
    pytest.param(training(parentIds=1), InvalidInput, "Field parentIds must be a list of integers",
                 id="parents-not-a-list"),
    pytest.param(training(parentIds=[True]), InvalidInput, "Field parentIds must be a list of integers",
                 id="parents-bool"),
    pytest.param(training(parentIds=["x1"]), InvalidInput, "Field parentIds must be a list of integers",
                 id="parents-not-digits"),
    pytest.param(training(parentIds=[1.0]), InvalidInput, "Field parentIds must be a list of integers",
                 id="parents-float"),
    pytest.param(training(parentIds=[3]), NotFound, "Parent training 3 not found", id="parent-of-another-tenant"),
    pytest.param(training(parentIds=[2]), NotFound, "Parent training 2 not found", id="parent-an-inference"),
    pytest.param(training(parentIds=[1, 999]), NotFound, "Parent training 999 not found", id="parent-unknown"),
    # gitModel
    pytest.param(training(gitModel=...), InvalidInput, "Missing field gitModel", id="git-model-missing"),
    pytest.param(training(gitModel="kqi/model"), InvalidInput, "Field gitModel must be", id="git-model-a-string"),
    pytest.param(training(gitModel=git(gitId=3)), NotFound, "Git endpoint 3 not found in this tenant",
                 id="git-of-another-tenant"),
    pytest.param(training(gitModel=git(gitId=999)), NotFound, "Git endpoint 999 not found in this tenant",
                 id="git-unknown"),
    pytest.param(training(gitModel=git(gitId="2")), InvalidInput, "Field gitId must be", id="git-id-string"),
    pytest.param(training(gitModel=git(owner=...)), InvalidInput, "Missing field owner", id="git-owner-missing"),
    pytest.param(training(gitModel=git(owner="-upload-pack=evil")), InvalidInput, "gitModel: owner",
                 id="git-owner-option"),
    pytest.param(training(gitModel=git(owner="a..b")), InvalidInput, "gitModel: owner", id="git-owner-dotdot"),
    pytest.param(training(gitModel=git(owner="a b")), InvalidInput, "gitModel: owner", id="git-owner-space"),
    pytest.param(training(gitModel=git(repository=...)), InvalidInput, "Missing field repository",
                 id="git-repository-missing"),
    pytest.param(training(gitModel=git(repository="../x")), InvalidInput, "gitModel: repository",
                 id="git-repository-dotdot"),
    pytest.param(training(gitModel=git(repository="a/b")), InvalidInput, "gitModel: repository",
                 id="git-repository-slash"),
    pytest.param(training(gitModel=git(repository=".hidden")), InvalidInput, "gitModel: repository",
                 id="git-repository-dot"),
    pytest.param(training(gitModel=git(branch="-b")), InvalidInput, "gitModel: branch", id="git-branch-option"),
    pytest.param(training(gitModel=git(branch="a..b")), InvalidInput, "gitModel: branch", id="git-branch-dotdot"),
    pytest.param(training(gitModel=git(branch="x.lock")), InvalidInput, "gitModel: branch", id="git-branch-lock"),
    pytest.param(training(gitModel=git(branch="b" * 256)), InvalidInput, "at most 255 characters",
                 id="git-branch-too-long"),
    pytest.param(training(gitModel=git(commitId="xyz123")), InvalidInput, "gitModel: commit",
                 id="git-commit-not-hex"),
    pytest.param(training(gitModel=git(commitId="abc")), InvalidInput, "gitModel: commit", id="git-commit-short"),
    pytest.param(training(gitModel=git(commitId="a" * 65)), InvalidInput, "at most 64 characters",
                 id="git-commit-too-long"),
    # containerImage
    pytest.param(training(containerImage="python:3.11"), InvalidInput, "containerImage must be an object",
                 id="image-a-string"),
    pytest.param(training(containerImage=image(image="Python")), InvalidInput, "not a valid image reference",
                 id="image-upper-case"),
    pytest.param(training(containerImage=image(image="-python")), InvalidInput, "not a valid image reference",
                 id="image-option"),
    *[pytest.param(training(containerImage=image(image=bad)), InvalidInput, "not a valid image reference",
                   id=f"image-{bad}") for bad in ("python/", "a//b", "a/../b", "/python", "a..b", "a_-b")],
    pytest.param(training(containerImage=image(tag="3.11 slim")), InvalidInput, "not a valid image reference",
                 id="image-tag-space"),
    pytest.param(training(containerImage=image(tag=".x")), InvalidInput, "not a valid image reference",
                 id="image-tag-dot"),
    pytest.param(training(containerImage=image(tag=...)), InvalidInput, "Missing field tag", id="image-tag-missing"),
    pytest.param(training(containerImage=image(registryId=2)), NotFound, "Registry endpoint 2 not found",
                 id="registry-of-another-tenant"),
    pytest.param(training(containerImage=image(registryId=99)), NotFound, "Registry endpoint 99 not found",
                 id="registry-unknown"),
    # options
    pytest.param(training(options=["A=1"]), InvalidInput, "options must be an object", id="options-a-list"),
    pytest.param(training(options={"1ABC": "x"}), InvalidInput, "is not a valid environment variable name",
                 id="option-name-digit-first"),
    pytest.param(training(options={"MY-OPTION": "x"}), InvalidInput, "is not a valid environment variable name",
                 id="option-name-dash"),
    pytest.param(training(options={"A=B": "x"}), InvalidInput, "is not a valid environment variable name",
                 id="option-name-equals"),
    pytest.param(training(options={"": "x"}), InvalidInput, "is not a valid environment variable name",
                 id="option-name-empty"),
    pytest.param(training(options={"KQI_TOKEN": "x"}), InvalidInput, "KQI_TOKEN is set by the platform",
                 id="option-fixed-kqi-token"),
    pytest.param(training(options={"LANG": "en_US.UTF-8"}), InvalidInput, "LANG is set by the platform",
                 id="option-fixed-lang"),
    pytest.param(training(options={"CUDA_VISIBLE_DEVICES": "0,1,2,3"}), InvalidInput,
                 "CUDA_VISIBLE_DEVICES is set by the platform", id="option-fixed-cuda"),
    pytest.param(training(options={"X": True}), InvalidInput, "the value of X must be a string", id="option-bool"),
    pytest.param(training(options={"X": None}), InvalidInput, "the value of X must be a string", id="option-null"),
    pytest.param(training(options={"X": {"a": 1}}), InvalidInput, "the value of X must be a string",
                 id="option-object"),
    pytest.param(training(options={"X": "a\x00b"}), InvalidInput, "the value of X must not contain NUL",
                 id="option-nul"),
    # tags, memo, flags
    pytest.param(training(tags="cats"), InvalidInput, "Field tags must be", id="tags-a-string"),
    pytest.param(training(tags=[""]), InvalidInput, "list of non-empty strings", id="tag-empty"),
    pytest.param(training(tags=[1]), InvalidInput, "list of non-empty strings", id="tag-a-number"),
    pytest.param(training(tags=["a,b"]), InvalidInput, "must not contain ','", id="tag-comma"),
    pytest.param(training(tags=["!x"]), InvalidInput, "must not contain ',' nor start with", id="tag-operator"),
    pytest.param(training(tags=["t" * 257]), InvalidInput, "a tag must be at most 256 characters", id="tag-long"),
    pytest.param(training(memo="m" * 4097), InvalidInput, "Field memo must be at most 4096", id="memo-too-long"),
    pytest.param(training(memo="a\x01b"), InvalidInput, "NUL or control characters", id="memo-control"),
    pytest.param(training(zip="yes"), InvalidInput, "Field zip must be", id="zip-a-string"),
    pytest.param(training(localDataSet=1), InvalidInput, "Field localDataSet must be", id="local-dataset-a-number"),
]


def run_count(db) -> int:
    return db.scalar(select(func.count()).select_from(Run))


@pytest.mark.parametrize("body, error, message", BAD_TRAININGS)
def test_a_bad_training_is_refused_and_nothing_is_queued(db, body, error, message):
    tenant, user = db.get(Tenant, 1), db.get(User, 1)
    before = run_count(db)
    with pytest.raises(error) as refused:
        submit(db, TRAINING, tenant, user, body)
    assert type(refused.value) in (error, gitmodel.GitModelError) and refused.value.status == error.status
    assert message in refused.value.message, refused.value.message
    db.rollback()
    assert run_count(db) == before
    assert db.get(DataSet, 1).is_locked is False  # a refused run does not lock its dataset


BAD_NOTEBOOKS = [
    pytest.param(notebook(expiresIn=...), InvalidInput, "expiresIn (the notebook's lifetime in seconds) is required",
                 id="expires-in-missing"),
    pytest.param(notebook(expiresIn=0), InvalidInput, "does not allow notebooks without a lifetime",
                 id="expires-in-0-not-allowed"),
    pytest.param(notebook(expiresIn=-1), InvalidInput, "Field expiresIn must be at least 0", id="expires-in-negative"),
    pytest.param(notebook(expiresIn=365 * 24 * 3600 + 1), InvalidInput, "Field expiresIn must be at most 31536000",
                 id="expires-in-above-a-year"),
    pytest.param(notebook(expiresIn="3600"), InvalidInput, "Field expiresIn must be", id="expires-in-string"),
    pytest.param(notebook(name="NB"), InvalidInput, "lowercase letters, digits or '-'", id="notebook-name"),
    pytest.param(notebook(dataSetId=2), NotFound, "Dataset 2 not found", id="notebook-dataset-of-another-tenant"),
    pytest.param(notebook(cpu=9), InvalidInput, "above the tenant's quota", id="notebook-over-quota"),
    pytest.param(notebook(options={"COMMIT_ID": "x"}), InvalidInput, "COMMIT_ID is set by the platform",
                 id="notebook-option-fixed"),
]


@pytest.mark.parametrize("body, error, message", BAD_NOTEBOOKS)
def test_a_bad_notebook_is_refused_and_nothing_is_queued(db, body, error, message):
    before = run_count(db)
    with pytest.raises(error) as refused:
        submit(db, NOTEBOOK, db.get(Tenant, 1), db.get(User, 1), body)
    assert type(refused.value) is error and message in refused.value.message, refused.value.message
    db.rollback()
    assert run_count(db) == before


# The owner/repository/branch/commit rules of submit are gitmodel's own (the ones its clone applies):
# whatever one accepts the other does, and what one refuses the other refuses.
GIT_NAMES = [
    pytest.param("owner", "group/sub", True, id="owner-subgroup"),
    pytest.param("owner", "kqi.team_1-x", True, id="owner-punctuation"),
    pytest.param("owner", "o" * 100, True, id="owner-100"),
    pytest.param("owner", "o" * 101, False, id="owner-101"),
    pytest.param("owner", "group//sub", False, id="owner-empty-part"),
    pytest.param("owner", "/group", False, id="owner-leading-slash"),
    pytest.param("repository", "model.git", True, id="repository-dot-git"),
    pytest.param("repository", "r" * 100, True, id="repository-100"),
    pytest.param("repository", "r" * 150, False, id="repository-150"),
    pytest.param("branch", "feature/x-1", True, id="branch-slash"),
    pytest.param("branch", "refs/heads/main", True, id="branch-refs-heads"),
    pytest.param("branch", "a~1", False, id="branch-tilde"),
    pytest.param("branch", "a^", False, id="branch-caret"),
    pytest.param("branch", "a@{1}", False, id="branch-reflog"),
    pytest.param("branch", "@", False, id="branch-at"),
    pytest.param("branch", "x/", False, id="branch-trailing-slash"),
    pytest.param("commitId", "ABCDEF1", True, id="commit-upper-case"),
    pytest.param("commitId", "abcd", True, id="commit-4"),
    pytest.param("commitId", "a" * 64, True, id="commit-sha256"),
    pytest.param("commitId", "g" * 40, False, id="commit-not-hex"),
]
CHECKS = {"owner": gitmodel.check_owner, "repository": gitmodel.check_repository, "branch": gitmodel.check_branch,
          "commitId": gitmodel.check_commit}


@pytest.mark.parametrize("field, value, accepted", GIT_NAMES)
def test_submit_and_gitmodel_agree_on_git_names(db, field, value, accepted):
    try:
        CHECKS[field](value)
        clone_accepts = True
    except gitmodel.GitModelError:
        clone_accepts = False
    assert clone_accepts is accepted
    body = training(gitModel=git(**{field: value}))
    if accepted:
        run = submit(db, TRAINING, db.get(Tenant, 1), db.get(User, 1), body)
        assert run.status == "Pending"
    else:
        with pytest.raises(InvalidInput, match="gitModel: "):
            submit(db, TRAINING, db.get(Tenant, 1), db.get(User, 1), body)


@pytest.mark.parametrize("name", ["FOO\n", "KQI_TOKEN\n"])
def test_an_option_name_with_a_trailing_newline_is_refused(db, name):
    with pytest.raises(InvalidInput, match="not a valid environment variable name"):
        submit(db, TRAINING, db.get(Tenant, 1), db.get(User, 1), training(options={name: "x"}))


def test_a_notebook_id_option_is_refused_as_a_fixed_variable(db):
    with pytest.raises(InvalidInput, match="NOTEBOOK_ID is set by the platform"):
        submit(db, NOTEBOOK, db.get(Tenant, 1), db.get(User, 1), notebook(options={"NOTEBOOK_ID": "7"}))


# Good bodies --------------------------------------------------------------------------------------


def test_a_full_training_is_queued_pending_with_what_it_asked_for(db):
    run = submit(db, TRAINING, db.get(Tenant, 1), db.get(User, 1), training())
    db.expire_all()
    run = db.get(Run, run.id)
    assert (run.kind, run.tenant_id, run.user_id, run.name, run.display_id) == ("training", 1, 1, "run-1", 2)
    assert (run.status, run.phase, run.node, run.started_at, run.completed_at) == ("Pending", "queued", None, None,
                                                                                  None)
    assert (run.dataset_id, [p.parent_id for p in run.parents]) == (1, [1])
    assert (run.git_id, run.git_owner, run.git_repository, run.git_branch, run.git_commit) == (
        2, "kqi", "model", "master", COMMIT)
    assert (run.registry_id, run.image, run.image_tag) == (1, "python", "3.11")
    assert (run.entry_point, run.options_json) == ("python3 train.py", '{"MY_OPTION": "42"}')
    assert (run.cpu, run.memory, run.gpu, run.partition) == (2, 4, 1, "default")
    assert (run.memo, [t.tag for t in run.tags], run.zip_output, run.local_dataset) == (
        "a memo", ["cats", "v1"], True, False)
    assert (run.created_by, run.modified_by, run.expires_in, run.server_name) == ("alice", "alice", None, None)
    assert run.queued_order == run.id  # the end of the queue: no run was queued before
    assert db.get(DataSet, 1).is_locked is True  # used by a run: its entries are fixed from now on


def test_a_minimal_training_takes_the_defaults(db):
    body = {"name": "min", "dataSetId": 1, "gitModel": {"owner": "kqi", "repository": "model"},
            "entryPoint": "true", "cpu": 1, "memory": 1, "gpu": 0}
    run = submit(db, TRAINING, db.get(Tenant, 1), db.get(User, 1), body)
    assert (run.status, run.phase) == ("Pending", "queued")
    assert (run.git_id, run.git_branch, run.git_commit) == (2, None, None)  # the tenant's default git endpoint
    assert (run.registry_id, run.image, run.image_tag, run.partition) == (None, None, None, None)
    assert (run.options_json, run.parents, run.tags, run.zip_output, run.memo) == ("{}", [], [], False, None)


def test_tolerated_spellings_are_normalised(db):
    """Digit-string parent ids (the upstream CLI's ``-pid``), duplicates, ``refs/heads/``, upper-case commits."""
    body = training(parentIds=["1", 1], options={"N": 3, "F": 1.5}, tags=[" cats ", "cats"],
                    gitModel=git(branch="refs/heads/dev", commitId=" ABCDEF1 "), partition="")
    run = submit(db, TRAINING, db.get(Tenant, 1), db.get(User, 1), body)
    assert [p.parent_id for p in run.parents] == [1]
    assert run.options_json == '{"F": "1.5", "N": "3"}'
    assert [t.tag for t in run.tags] == ["cats"]
    assert (run.git_branch, run.git_commit, run.partition) == ("dev", "abcdef1", None)


def test_the_quota_and_the_node_at_their_limits_are_accepted(db):
    run = submit(db, TRAINING, db.get(Tenant, 1), db.get(User, 1), training(cpu=8, memory=64, gpu=2))
    assert (run.cpu, run.memory, run.gpu, run.status) == (8, 64, 2, "Pending")


def test_two_runs_are_numbered_and_queued_in_order(db):
    tenant, user = db.get(Tenant, 1), db.get(User, 1)
    first = submit(db, TRAINING, tenant, user, training(name="first"))
    second = submit(db, TRAINING, tenant, user, training(name="second"))
    assert (first.display_id, second.display_id) == (2, 3)  # training 1 is the seeded parent
    assert second.queued_order > first.queued_order


def test_a_notebook_is_queued_with_its_lifetime_and_server_name(db):
    run = submit(db, NOTEBOOK, db.get(Tenant, 1), db.get(User, 1), notebook(zip=True))
    assert (run.kind, run.status, run.phase, run.expires_in, run.server_name) == (
        "notebook", "Pending", "queued", 3600, "nb-1")
    assert (run.entry_point, run.git_id, run.zip_output, run.dataset_id) == ("", None, False, 1)
