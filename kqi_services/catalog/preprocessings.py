"""Preprocessing core: definitions, their histories (one run per definition and input data), and results as data.

A definition (``Preprocessing``) needs only a name; to run on the platform
it needs every field but the memo (``missing_for_run`` names what is
missing). Running it on data makes one history per data: a Run of the
``preprocessing`` kind with ``preprocessing_id`` and ``input_data_id``,
queued by ``submission.submit_run`` like any run. The pair is unique (a
constraint, so two concurrent runs cannot both get it): a second run on
the same data is refused until that history is deleted, and deleting it
deletes the data it produced.

Results: when a history completes, each directory ``/kqi/output/{name}``
becomes a data ``{name}`` (``register_outputs``): its files, found
recursively, are hard-linked into the store, never copied or zipped;
files directly in ``/kqi/output`` are not registered. Nothing is
registered unless everything can be: a failed or halted history, or an
output the platform cannot register, leaves no data behind.

The external flow (the original's CLI-only ``build-history``): a history
is opened for a data (status ``Opened``, never queued), result files are
uploaded and added as data (``add_output_data``), then it is completed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from kqi_services import validation as v
from kqi_services.catalog.data import (
    MAX_FILES_PER_DATA,
    add_files,
    get_data,
    next_display_id,
    parse_new_files,
    used_by_dataset,
)
from kqi_services.errors import Conflict, InvalidInput, KqiError, NotFound
from kqi_services.jobs import status as st
from kqi_services.jobs.runfiles import DIRECTORY, FILE, TRUNCATED, RunTree, display_path
from kqi_services.jobs.submission import _git_model, _image, submit_run
from kqi_services.orm import Data, DataFile, DataTag, Preprocessing, Run, Tenant, User, utcnow

from ..jobs.kinds import PREPROCESSING

#: what a definition needs to run on the platform (the memo is the one optional field)
RUN_FIELDS = ("entryPoint", "containerImage", "gitModel", "cpu", "memory", "gpu")
#: the most output data one history may register, and the most files it may register in all
MAX_OUTPUT_DATA = 1000
MAX_OUTPUT_FILES = 100_000


# definitions ----------------------------------------------------------------------------------


def get_definition(db, tenant: Tenant, preprocessing_id: int) -> Preprocessing:
    pre = db.get(Preprocessing, preprocessing_id)
    if pre is None or pre.tenant_id != tenant.id:
        raise NotFound(f"Preprocessing {preprocessing_id} not found")
    return pre


def histories_of(db, pre: Preprocessing) -> list[Run]:
    return list(db.scalars(select(Run).where(Run.preprocessing_id == pre.id).order_by(Run.id.desc())))


def has_histories(db, pre: Preprocessing) -> bool:
    return db.scalar(select(Run.id).where(Run.preprocessing_id == pre.id).limit(1)) is not None


def missing_for_run(pre: Preprocessing) -> list[str]:
    """The fields a run on the platform still needs (the contract's names); [] when it can run."""
    present = {"entryPoint": bool((pre.entry_point or "").strip()), "containerImage": bool(pre.image),
               "gitModel": pre.git_id is not None and bool(pre.git_repository),
               "cpu": pre.cpu is not None, "memory": pre.memory is not None, "gpu": pre.gpu is not None}
    return [name for name in RUN_FIELDS if not present[name]]


def _set_resources(pre: Preprocessing, body: dict) -> None:
    for name, maximum in (("cpu", 100_000), ("memory", 1_000_000), ("gpu", 1024)):
        if name in body:
            setattr(pre, name, v.integer(body, name, minimum=1 if name != "gpu" else 0, maximum=maximum))


def _set_name_and_memo(pre: Preprocessing, body: dict, required: bool) -> None:
    if required or body.get("name") is not None:
        pre.name = v.string(body, "name", required=True, max_length=256)
    if "memo" in body:
        pre.memo = v.string(body, "memo", max_length=4096)


def set_definition(db, tenant: Tenant, pre: Preprocessing, body, actor: str) -> Preprocessing:
    """CreateInputModel onto ``pre`` (POST and PUT): fields left out are cleared, as a PUT replaces."""
    v.require_object(body)
    _set_name_and_memo(pre, body, required=True)
    entry_point = v.string(body, "entryPoint", max_length=64 * 1024, strip=False)
    pre.entry_point = entry_point if entry_point and entry_point.strip() else None
    pre.registry_id, pre.image, pre.image_tag = _image(db, tenant, body)
    pre.git_id, pre.git_owner, pre.git_repository, pre.git_branch, pre.git_commit = _git_model(
        db, tenant, body, required=False)
    pre.cpu = pre.memory = pre.gpu = None
    _set_resources(pre, body)
    pre.modified_by = actor
    return pre


def create_definition(db, tenant: Tenant, body, actor: str) -> Preprocessing:
    pre = Preprocessing(tenant_id=tenant.id, created_by=actor)
    set_definition(db, tenant, pre, body, actor)
    db.add(pre)
    db.commit()
    return pre


def replace_definition(db, tenant: Tenant, pre: Preprocessing, body, actor: str) -> Preprocessing:
    """PUT: refused once it has histories (they must stay what they were run with), as the original does."""
    if has_histories(db, pre):
        raise Conflict(f"Preprocessing {pre.id} has been run (it has histories): its command, image and model "
                       "cannot change; edit its name, memo and resources (PATCH) or define a new one")
    set_definition(db, tenant, pre, body, actor)
    db.commit()
    return pre


def edit_definition(db, pre: Preprocessing, body, actor: str) -> Preprocessing:
    """PATCH (EditInputModel): name, memo, cpu, memory, gpu; fields left out keep their value."""
    v.require_object(body)
    _set_name_and_memo(pre, body, required=False)
    _set_resources(pre, {k: body[k] for k in ("cpu", "memory", "gpu") if body.get(k) is not None})
    pre.modified_by = actor
    db.commit()
    return pre


def delete_definition(db, pre: Preprocessing) -> None:
    """Refused while a history is not ended; ended histories stay as runs (their data keep their lineage)."""
    active = [r.input_data_id for r in histories_of(db, pre) if r.status in st.ACTIVE]
    if active:
        raise Conflict(f"Preprocessing {pre.id} has histories that have not ended (data "
                       f"{', '.join(map(str, active))}); halt or delete them first")
    db.execute(Run.__table__.update().where(Run.preprocessing_id == pre.id).values(preprocessing_id=None))
    db.delete(pre)
    db.commit()


# histories ------------------------------------------------------------------------------------


def get_history(db, pre: Preprocessing, data_id: int) -> Run:
    run = db.scalar(select(Run).where(Run.preprocessing_id == pre.id, Run.input_data_id == data_id))
    if run is None:
        raise NotFound(f"Preprocessing {pre.id} has no history for data {data_id}")
    return run


def output_data_ids(db, run: Run) -> list[int]:
    return output_data_ids_of(db, [run]).get(run.id, [])


def output_data_ids_of(db, runs: list[Run]) -> dict[int, list[int]]:
    """{history id: the data it produced} for many histories in one query; their input data loaded too
    (so a list's models read them from the session, not a query each)."""
    ids = [r.id for r in runs]
    made: dict[int, list[int]] = {}
    if not ids:
        return made
    for run_id, data_id in db.execute(select(Data.produced_by_run_id, Data.id).where(
            Data.produced_by_run_id.in_(ids)).order_by(Data.id)):
        made.setdefault(run_id, []).append(data_id)
    inputs = {r.input_data_id for r in runs if r.input_data_id is not None}
    if inputs:
        list(db.scalars(select(Data).where(Data.id.in_(inputs))))
    return made


def _check_unprocessed(db, pre: Preprocessing, data: Data) -> None:
    existing = db.scalar(select(Run).where(Run.preprocessing_id == pre.id, Run.input_data_id == data.id))
    if existing is not None:
        raise Conflict(f"Data {data.id}:{data.name} has already been processed by {pre.id}:{pre.name} "
                       f"(status {existing.status}); delete that history to run it again")


def _input_data(db, tenant: Tenant, pre: Preprocessing, data_ids: list[int]) -> list[Data]:
    if not data_ids:
        raise InvalidInput("dataId (or dataIds) must name the data to preprocess")
    datas = [get_data(db, tenant, d) for d in data_ids]
    for data in datas:
        _check_unprocessed(db, pre, data)
    return datas


def run_body(pre: Preprocessing, body: dict) -> dict:
    """The CreateInputModel of one history: the definition's model, image and command, the request's resources
    (a resource the request leaves out or sends as null is the definition's default)."""
    return {
        "name": f"preprocessing-{pre.id}",
        "entryPoint": pre.entry_point,
        "containerImage": {"registryId": pre.registry_id, "image": pre.image, "tag": pre.image_tag},
        "gitModel": {"gitId": pre.git_id, "owner": pre.git_owner, "repository": pre.git_repository,
                     "branch": pre.git_branch, "commitId": pre.git_commit},
        "options": body.get("options"),
        **{name: body[name] if body.get(name) is not None else getattr(pre, name) for name in ("cpu", "memory", "gpu")},
        "partition": body.get("partition"),
    }


def run_on_data(db, tenant: Tenant, user: User, pre: Preprocessing, body) -> list[Run]:
    """RunPreprocessHistoryInputModel (``dataId``; added: ``dataIds``): one queued history per data, all or none."""
    v.require_object(body)
    missing = missing_for_run(pre)
    if missing:
        raise InvalidInput(f"Preprocessing {pre.id}:{pre.name} cannot run on the platform: it lacks "
                           f"{', '.join(missing)} (only the memo is optional for a run)")
    many = "dataIds" in body
    data_ids = v.integer_list(body, "dataIds", required=True) if many else [v.integer(body, "dataId", required=True)]
    if many and len(data_ids) != len(body["dataIds"]):
        raise InvalidInput("dataIds names the same data twice")
    datas = _input_data(db, tenant, pre, data_ids)
    request = run_body(pre, body)
    runs = []
    try:
        for data in datas:
            run = submit_run(db, PREPROCESSING, tenant, user, request, commit=False)
            run.name = pre.name[:256]
            run.preprocessing_id, run.input_data_id = pre.id, data.id
            runs.append(run)
        db.flush()
        db.commit()
    except IntegrityError:
        db.rollback()
        raise Conflict("Another request ran this preprocessing on one of these data meanwhile") from None
    except Exception:
        db.rollback()
        raise
    return runs


def open_history(db, tenant: Tenant, user: User, pre: Preprocessing, data_id: int) -> Run:
    """The external flow's history: ``Opened``, never queued; results are added with ``add_output_data``."""
    data = _input_data(db, tenant, pre, [data_id])[0]
    run = Run(kind=PREPROCESSING.name, tenant_id=tenant.id, user_id=user.id, name=pre.name[:256],
              display_id=next_display_id(db, Run, tenant.id), entry_point=pre.entry_point or "",
              registry_id=pre.registry_id, image=pre.image, image_tag=pre.image_tag, git_id=pre.git_id,
              git_owner=pre.git_owner, git_repository=pre.git_repository, git_branch=pre.git_branch,
              git_commit=pre.git_commit, cpu=pre.cpu or 0, memory=pre.memory or 0, gpu=pre.gpu or 0,
              status=st.OPENED, phase=st.OPENED_PHASE, preprocessing_id=pre.id, input_data_id=data.id,
              created_by=user.name, modified_by=user.name)
    db.add(run)
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        raise Conflict(f"Data {data.id} has already been processed by {pre.id}:{pre.name}") from None
    return run


def output_name(name) -> str:
    """A result's data name: one path segment (a directory name of /kqi/output)."""
    return v.safe_file_name(name, "the output data's name")


def new_output_data(db, run: Run, pre_name: str, name: str, actor: str, memo: str | None = None,
                    tags: list[str] | None = None) -> Data:
    """A data made by history ``run``: tagged with the preprocessing's name and the input data's tags."""
    source = db.get(Data, run.input_data_id)
    data = Data(tenant_id=run.tenant_id, display_id=next_display_id(db, Data, run.tenant_id), name=name,
                memo=memo if memo is not None else
                f"Made by preprocessing {run.preprocessing_id}:{pre_name} from data {run.input_data_id}"
                + (f":{source.name}" if source else "") + f" (history {run.id})",
                is_raw=False, parent_data_id=run.input_data_id, produced_by_run_id=run.id,
                created_by=actor, modified_by=actor)
    if tags is None:
        tags = [pre_name[:256], *((t.tag for t in source.tags) if source else ())]
    data.tags = [DataTag(tag=t) for t in dict.fromkeys(tags)]
    db.add(data)
    db.flush()
    return data


def add_output_data(db, tenant: Tenant, pre: Preprocessing, run: Run, body, actor: str) -> Data:
    """AddOutputDataInputModel: uploaded files registered as a new data of the history (Opened or Running)."""
    if run.status not in (st.OPENED, st.RUNNING):
        raise InvalidInput(f"Preprocessing history {run.id} is not opened (it is {run.status})")
    v.require_object(body)
    source = db.get(Data, run.input_data_id)
    name = body.get("name") or f"{source.name if source else run.input_data_id}_{pre.name}"
    name = output_name(v.string({"name": name}, "name", required=True, max_length=256))
    files = parse_new_files(body)
    tags = v.tags(body) or None
    data = new_output_data(db, run, pre.name, name, actor, v.string(body, "memo", max_length=4096), tags)
    add_files(db, tenant, data, files, actor)
    db.commit()
    return data


def end_opened(db, run: Run, final: str) -> None:
    """complete/halt of an Opened history (nothing runs: it ends at once)."""
    st.apply(run, "end", utcnow(), final=final)
    db.commit()


def discard_outputs(db, run: Run, store) -> None:
    """Delete the data a history made and their bytes (a history halted while its results were registered)."""
    for data in db.scalars(select(Data).where(Data.produced_by_run_id == run.id)):
        paths = [f.stored_path for f in data.files]
        db.delete(data)
        db.flush()
        for path in paths:
            store.delete(path)


def delete_history(db, run: Run) -> list[str]:
    """Delete a history and the data it produced; return the stored paths whose bytes may go.

    Refused while it is queued or running (halt it first) and while an
    output data is in a dataset.
    """
    if run.status in (st.PENDING, st.RUNNING):
        raise Conflict(f"Preprocessing history {run.id} is {run.status}; halt it first")
    outputs = list(db.scalars(select(Data).where(Data.produced_by_run_id == run.id)))
    for data in outputs:
        if used_by_dataset(db, data):
            raise Conflict(f"The history's output data {data.id}:{data.name} is used by a dataset; remove it "
                           "from the dataset first")
    paths = [f.stored_path for data in outputs for f in data.files]
    for data in outputs:
        db.delete(data)
    db.delete(run)
    db.commit()
    return paths


# results --------------------------------------------------------------------------------------


class OutputNotRegistered(KqiError):
    """A completed history's output cannot become data (the history then fails, registering nothing)."""

    status = 400


@dataclass
class OutputPlan:
    """What ``plan_outputs`` found: for each data name, its files as (file name, path parts under /kqi/output)."""

    data: dict[str, list[tuple[str, tuple[bytes, ...]]]] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)  # entries that are not regular files or directories


def plan_outputs(tree: RunTree) -> OutputPlan:
    """Read /kqi/output: every directory a data, its regular files (recursively) its files, by base name.

    Raises OutputNotRegistered for what cannot become data: a name that is
    not UTF-8 or not a valid name, two files of one data with the same
    name, or more than the platform's caps.
    """
    plan = OutputPlan()
    seen: dict[str, dict[str, tuple[bytes, ...]]] = {}  # data name → {file name: its parts}
    total = 0
    for parts, entry, _dir_fd in tree.walk(limit=MAX_OUTPUT_FILES):
        shown = display_path(parts)
        if entry.kind == TRUNCATED:
            raise OutputNotRegistered(f"{shown} holds more than {MAX_OUTPUT_FILES} entries")
        if len(parts) == 1:
            if entry.kind == DIRECTORY:
                name = _decoded(parts[0], shown)
                try:
                    output_name(name)
                except InvalidInput as e:
                    raise OutputNotRegistered(str(e)) from None
                if len(plan.data) >= MAX_OUTPUT_DATA:
                    raise OutputNotRegistered(f"/kqi/output holds more than {MAX_OUTPUT_DATA} directories")
                plan.data[name], seen[name] = [], {}
            continue  # files directly in /kqi/output are not registered
        if entry.kind == DIRECTORY:
            continue
        if entry.kind != FILE:
            plan.left_out.append(shown)
            continue
        data_name = parts[0].decode()
        file_name = _decoded(parts[-1], shown)
        files = plan.data[data_name]
        if len(files) >= MAX_FILES_PER_DATA:
            raise OutputNotRegistered(f"/kqi/output/{data_name} holds more than {MAX_FILES_PER_DATA} files "
                                      "(the most one data may hold)")
        if total >= MAX_OUTPUT_FILES:
            raise OutputNotRegistered(f"/kqi/output holds more than {MAX_OUTPUT_FILES} files")
        clash = seen[data_name].get(file_name)
        if clash is not None:
            raise OutputNotRegistered(f"/kqi/output/{data_name} has two files named {file_name!r} "
                                      f"({display_path(clash)} and {shown}): a data's files have one level of names")
        files.append((file_name, parts))
        seen[data_name][file_name] = parts
        total += 1
    return plan


def _decoded(raw: bytes, shown: str) -> str:
    try:
        name = raw.decode()
    except UnicodeDecodeError:
        raise OutputNotRegistered(f"{shown}: the name is not UTF-8") from None
    try:
        return v.safe_file_name(name, "an output name")
    except InvalidInput as e:
        raise OutputNotRegistered(f"{shown}: {e}") from None


def register_outputs(db, run: Run, pre_name: str, store, prefix: str, output_dir: str) -> tuple[list[int], str | None]:
    """Make each directory of a completed history's output a data (hard links into the store), in ``db``.

    Returns the new data ids and a note of what was left out (links,
    devices...), or raises OutputNotRegistered having written nothing (the
    objects already bound are dropped again). The caller commits.
    """
    if not os.path.isdir(output_dir):
        return [], None
    with RunTree(output_dir) as tree:
        plan = plan_outputs(tree)
        if not plan.data:
            return [], None
        stored = store.adopt_files(prefix, _opened_files(tree, plan))
    try:
        made, at = [], 0
        rows = []
        for name, files in plan.data.items():
            data = new_output_data(db, run, pre_name, name, "system")
            made.append(data.id)
            for (file_name, _parts), obj in zip(files, stored[at:at + len(files)], strict=True):
                rows.append({"data_id": data.id, "file_name": file_name, "stored_path": obj.stored_path,
                             "size": obj.size, "sha256": obj.sha256, "created_by": "system",
                             "modified_by": "system", "created_at": utcnow(), "modified_at": utcnow()})
            at += len(files)
        if rows:
            db.execute(insert(DataFile), rows)
        db.flush()
    except Exception:
        db.rollback()
        for obj in stored:
            store.delete(obj.stored_path)
        raise
    note = (f"{len(plan.left_out)} entries of /kqi/output are not regular files and were not registered "
            f"(e.g. {plan.left_out[0]})") if plan.left_out else None
    return made, note


def _opened_files(tree: RunTree, plan: OutputPlan):
    """(file name, fd) of each planned file in order, each opened without following links and closed after use."""
    for files in plan.data.values():
        for file_name, parts in files:
            with tree.open_file(parts) as opened:
                yield file_name, opened.fd

