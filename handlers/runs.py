"""Run API of every job kind (v2 Training group; notebooks, preprocessing and inference reuse it).

Each route passes its JobKind to the handler (``handlers_for`` at the bottom
of the module), so the training routes and the other kinds' are the same
code over other data. Handlers check the request and call the core:
``submission.submit_run`` queues, the engine halts and deletes, ``apimodels``
writes the JSON.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from urllib.parse import quote

from sqlalchemy import exists, select

from kqi_services import apimodels
from kqi_services import validation as v
from kqi_services.apimodels import timestamp
from kqi_services.catalog.data import completed_upload
from kqi_services.errors import Conflict, InvalidInput, NotFound
from kqi_services.jobs import status as st
from kqi_services.jobs.engine import JobEngine
from kqi_services.jobs.kinds import INFERENCE, KINDS, TRAINING, JobKind
from kqi_services.jobs.queue import queue_position
from kqi_services.jobs.runfiles import (
    DIRECTORY,
    FILE,
    SYMLINK,
    Entry,
    OpenFile,
    RunTree,
    components,
    display_name,
    display_path,
    output_value,
    url_path,
)
from kqi_services.jobs.runtime import RunPaths
from kqi_services.jobs.submission import RUN_NAME, resubmission_body, submit_run
from kqi_services.listing import apply_standard_filters, text_filter
from kqi_services.orm import DataSet, Run, RunFile, RunTag, User
from kqi_services.storage import signing

from .base import APIHandler
from .files import FileSender

MAX_LISTED_ENTRIES = 10_000
IMAGE_NOT_USED = ("This platform runs jobs in its own environment: the image {image} is recorded, not used "
                  "(an administrator sets KQI_EXECUTOR=docker to run jobs in their images)")
LOG_CHUNK = 1024 * 1024


class RunBase(APIHandler):
    """A handler of one job kind's routes: the route passes the kind (``{"kind": TRAINING}``)."""

    kind: JobKind = TRAINING

    def initialize(self, kind: JobKind = TRAINING) -> None:
        self.kind = kind

    @property
    def engine(self) -> JobEngine:
        return self.settings["engine"]

    def find(self, run_id) -> Run:
        tenant = self.require_tenant()
        run = self.db.get(Run, v.path_id(run_id))
        if run is None or run.tenant_id != tenant.id or run.kind != self.kind.name:
            raise NotFound(f"{self.kind.name.capitalize()} {run_id} not found")
        return run

    def paths(self, run: Run) -> RunPaths:
        return RunPaths.of(self.settings["runs_dir"], self.kind, run.id)

    def output_value(self, run: Run) -> str | None:
        """An inference's ``outputValue``: the first line of its /kqi/output/value.txt."""
        return output_value(self.paths(run).output) if self.kind.output_value else None

    def index_model(self, run: Run) -> dict:
        model = apimodels.run_index_model(self.db, run, self.output_value(run))
        if self.kind.interactive:
            model.update(apimodels.notebook_lifetime_model(run))
        return model

    def image_pull(self, run: Run) -> dict | None:
        """The executor's progress of the run's image pull (``executor/pull.py``), if it pulled one."""
        return self.engine.executor.pull_progress(self.kind.run_key(run.id))

    def details_model(self, run: Run) -> dict:
        model = apimodels.run_details_model(self.db, run, self.kind, queue_position(self.db, run),
                                            self.output_value(run))
        # added: whether the run's image is what it runs in (never said silently: the sandbox does not use it)
        model["imageUsed"] = bool(run.image) and bool(getattr(self.engine.executor, "uses_images", False))
        model["imageNote"] = (IMAGE_NOT_USED.format(image=f"{run.image}:{run.image_tag}")
                              if run.image and not model["imageUsed"] else None)
        # added: the image pull, layer by layer; while it runs it is the run's condition
        model["imagePull"] = self.image_pull(run)
        if model["imagePull"] and run.status == st.PENDING and not (model["imagePull"]["done"]
                                                                     or model["imagePull"]["error"]):
            model["conditionNote"] = model["imagePull"]["message"]
        if self.kind.interactive:
            user = self.db.get(User, run.user_id)
            model = apimodels.notebook_details_model(model, run, self.kqi.hub_base_url, user.name if user else "")
        return model


class RunSubmitHandler(RunBase):
    """POST /api/v2/{kind}/run: check and queue (``submission.submit_run``), 201 with its queue position."""

    def post(self):
        self.submit(self.get_json_body())

    def submit(self, body) -> None:
        run = submit_run(self.db, self.kind, self.require_tenant(), self.principal.user, body)
        self.engine.kick()
        self.write_json({**self.index_model(run), "queuePosition": queue_position(self.db, run)}, 201)


class RunCopyHandler(RunSubmitHandler):
    """POST /api/v2/{kind}/{id}/copy-run: a new run with an existing one's settings, the body's fields winning.

    Added to the contract: the original's "copy and run" form, as one call.
    The copy resolves the model again unless the body names a commit.
    """

    def post(self, run_id):
        source = self.find(run_id)
        overrides = v.require_object(self.get_json_body() or {})
        self.submit({**resubmission_body(source), **overrides})


class RunListHandler(RunBase):
    def get(self):
        tenant = self.require_tenant()
        query = select(Run).where(Run.tenant_id == tenant.id, Run.kind == self.kind.name)
        args = {k: self.get_query_argument(k, None) for k in ("Id", "Name", "Memo", "CreatedAt")}
        args["CreatedAt"] = self.get_query_argument("StartedAt", None)
        args["CreatedBy"] = self.get_query_argument("StartedBy", None)
        query = apply_standard_filters(query, Run, args)
        if self.get_query_argument("Status", None):
            query = query.where(text_filter(Run.status, self.get_query_argument("Status")))
        if self.get_query_argument("EntryPoint", None):
            query = query.where(text_filter(Run.entry_point, self.get_query_argument("EntryPoint")))
        if self.get_query_argument("DataSet", None):
            query = query.where(Run.dataset_id.in_(
                select(DataSet.id).where(text_filter(DataSet.name, self.get_query_argument("DataSet")))))
        # the upstream CLI sends `--tag a --tag b` as one csv value (tag=a,b); a tag never holds a comma
        for tag in self.tag_filters():
            query = query.where(exists().where(RunTag.run_id == Run.id, RunTag.tag == tag))
        self.write_json([self.index_model(r) for r in self.page_of(query.order_by(Run.id.desc()), Run)])


class RunHandler(RunBase):
    def get(self, run_id):
        self.write_json(self.details_model(self.find(run_id)))

    def put(self, run_id):
        """EditInputModel: name, memo, favorite, tags."""
        run = self.find(run_id)
        body = v.require_object(self.get_json_body())
        if body.get("name") is not None:
            name = v.string(body, "name", required=True, max_length=30)
            if not RUN_NAME.fullmatch(name):
                raise InvalidInput("name must be 1-30 lowercase letters, digits or '-'")
            run.name = name
        if "memo" in body:
            run.memo = v.string(body, "memo", max_length=4096)
        if body.get("favorite") is not None:
            run.favorite = v.boolean(body, "favorite")
        if body.get("tags") is not None:
            run.tags = [RunTag(tag=t) for t in v.tags(body)]
        run.modified_by = self.actor
        self.db.commit()
        self.write_json(self.index_model(run))

    def delete(self, run_id):
        run = self.find(run_id)
        if run.status in st.ACTIVE:
            raise Conflict(f"{self.kind.name.capitalize()} {run.id} is {run.status}; halt it first")
        if self.db.scalar(select(Run.id).where(Run.parents.any(parent_id=run.id)).limit(1)):
            raise Conflict(f"{self.kind.name.capitalize()} {run.id} is the parent of another run")
        self.db.delete(run)
        self.db.commit()
        self.engine.delete_run_files(run)
        self.set_status(204)
        self.finish()


class RunActionHandler(RunBase):
    """POST …/halt, …/user-cancel, …/complete: the route passes the status it ends with (``final``)."""

    def initialize(self, kind: JobKind = TRAINING, final: str = st.KILLED) -> None:
        super().initialize(kind)
        self.final = final

    async def post(self, run_id):
        run = self.find(run_id)
        if run.status not in st.ACTIVE:
            raise Conflict(f"{self.kind.name.capitalize()} {run.id} is already {run.status}")
        await self.engine.halt(self.db, run, self.final)
        self.db.refresh(run)
        self.write_json(self.index_model(run))


class RunFilesHandler(RunBase):
    """Attached files: uploaded by the user, plus the log and output.zip at the end."""

    def get(self, run_id):
        run = self.find(run_id)
        with_url = self.get_query_argument("withUrl", "false").lower() == "true"
        store = self.store_for(self.principal.tenant) if with_url else None
        base = self.service_url_base()
        self.write_json([
            {"id": run.id, "fileId": f.id, "fileName": f.file_name, "isLocked": f.is_locked, "size": f.size,
             "url": store.download_url(f.stored_path, f.file_name, base) if with_url else None}
            for f in run.files
        ])

    def post(self, run_id):
        tenant = self.require_tenant()
        run = self.find(run_id)
        body = v.require_object(self.get_json_body())
        name = v.safe_file_name(v.field(body, "fileName", str, required=True))
        stored_path = v.string(body, "storedPath", required=True, strip=False)
        upload = completed_upload(self.db, tenant, stored_path)
        if any(f.file_name == name for f in run.files):
            raise Conflict(f"A file named {name!r} is already attached")
        row = RunFile(run_id=run.id, file_name=name, stored_path=stored_path, size=upload.size or 0,
                      created_by=self.actor, modified_by=self.actor)
        self.db.add(row)
        self.db.commit()
        self.write_json({"id": run.id, "fileId": row.id, "fileName": name, "isLocked": False, "url": None}, 201)


class RunFileHandler(RunBase):
    def delete(self, run_id, file_id):
        run = self.find(run_id)
        row = self.db.get(RunFile, v.path_id(file_id, "fileId"))
        if row is None or row.run_id != run.id:
            raise NotFound(f"File {file_id} not found")
        if row.is_locked:
            raise Conflict(f"{row.file_name} is kept by the platform and cannot be deleted")
        self.db.delete(row)
        self.db.commit()
        self.set_status(204)
        self.finish()


class RunFileSizeHandler(RunBase):
    def get(self, run_id, name):
        run = self.find(run_id)
        row = next((f for f in run.files if f.file_name == name), None)
        if row is None:
            raise NotFound(f"File {name!r} not found")
        self.write_json({"id": run.id, "fileId": row.id, "key": row.stored_path, "fileName": row.file_name,
                         "fileSize": row.size, "url": None})


class RawNames:
    """Mixin: path and query arguments keep bytes that are not UTF-8 (as surrogate escapes, for ``components``)."""

    def decode_argument(self, value: bytes, name: str | None = None) -> str:
        return value.decode("utf-8", "surrogateescape")

    def query_path(self) -> bytes | None:
        """The ``path`` query argument's bytes exactly as sent (tornado's getter would rewrite some), or None."""
        values = self.request.query_arguments.get("path")
        return values[-1] if values else None


def output_entry(kind: JobKind, run: Run, parts: tuple[bytes, ...], entry: Entry, url_base: str | None,
                 secret: bytes) -> dict:
    """One entry of a container-files listing: a dir, a file (signed URL when ``url_base``) or a skipped one.

    The contract's fields (``dirName``/``dirPath``, ``key``/``fileName``…) carry
    names as ``display_name`` writes them; added: ``type``, and ``encodedPath``,
    the raw bytes percent-encoded, exact for ``?path=`` and URLs whatever the name.
    """
    shown, encoded = display_path(parts), url_path(parts)
    if entry.kind == DIRECTORY:
        return {"dirName": display_name(entry.name), "dirPath": shown, "type": entry.kind, "encodedPath": encoded}
    model = {"key": shown, "fileName": display_name(entry.name), "size": entry.size,
             "lastModified": timestamp(_utc(entry.mtime)), "type": entry.kind, "encodedPath": encoded}
    if entry.kind == FILE:
        model["url"] = output_url(kind, run, parts, url_base, secret) if url_base else None
    else:
        model["reason"] = (f"a {entry.kind}: not followed" if entry.kind == SYMLINK else
                           f"a {entry.kind}, not a regular file: not listed as a file, not served, not zipped")
    return model


def output_url(kind: JobKind, run: Run, parts: tuple[bytes, ...], base: str, secret: bytes) -> str:
    """The signed download URL of a file of a run's output; the signature covers the exact bytes of its path.

    The URL's path is the file's path; for one that is not UTF-8 (which the
    hub's proxy cannot route) it is the ``display_path``, and the exact bytes
    go in a ``path`` query argument.
    """
    exact = url_path(parts)
    query = signing.sign(secret, "GET", f"{kind.run_key(run.id)}/{exact}", 3600)
    shown = quote(display_path(parts)[1:], safe="/")
    path_query = "" if shown == exact else f"path={exact}&"
    return (f"{base}/storage/runs/{kind.run_key(run.id)}/{shown}"
            f"?{path_query}expires={query['expires']}&signature={query['signature']}")


class ContainerFilesHandler(RawNames, RunBase):
    """GET …/container-files?path=/sub&withUrl=true: /kqi/output while the run runs and after.

    Read through ``RunTree``: never through a symlink. Directories and regular
    files are listed as the contract has them; anything else (symlinks,
    FIFOs, sockets, devices) is in the added ``skipped`` list with its
    ``type`` and a ``reason``. At most 10,000 entries, ``exceeded`` says when
    there were more.
    """

    def get(self, run_id):
        run = self.find(run_id)
        parts = components((self.query_path() or b"/").replace(b"\\", b"/"))
        with_url = self.get_query_argument("withUrl", "false").lower() == "true"
        base = self.service_url_base() if with_url else None
        secret = self.settings["local_store"].secret
        with RunTree(self.paths(run).output) as tree:
            entries, exceeded = tree.listdir(parts, MAX_LISTED_ENTRIES)
        listing = {"dirs": [], "files": [], "skipped": []}
        for entry in entries:
            group = "dirs" if entry.kind == DIRECTORY else "files" if entry.kind == FILE else "skipped"
            listing[group].append(output_entry(self.kind, run, parts + (entry.name,), entry, base, secret))
        # added: "limit" (what "exceeded" means here) and "skipped"
        self.write_json({**listing, "exceeded": exceeded, "limit": MAX_LISTED_ENTRIES})


class RunOutputFileHandler(RawNames, RunBase):
    """GET …/{id}/output?path=/dir/name (added): a file of the run's /kqi/output, for a signed-in browser.

    Answers 302 to the file's signed URL (``output_url``, relative to this
    origin), so a link in a page downloads it however the browser is signed
    in; 404 for anything but a regular file of the output (never through a symlink).
    """

    def get(self, run_id):
        run = self.find(run_id)
        parts = components((self.query_path() or b"").replace(b"\\", b"/"))
        if not parts:
            raise InvalidInput("path must name a file of the output")
        with RunTree(self.paths(run).output) as tree:
            tree.open_file(parts).close()
        self.redirect(output_url(self.kind, run, parts, self.kqi.service_prefix.rstrip("/"),
                                 self.settings["local_store"].secret))


def _utc(epoch: float):
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


class RunOutputDownloadHandler(RawNames, FileSender, APIHandler):
    """GET/HEAD storage/runs/{kind}-{id}/{path}: a file of a run's /kqi/output by its signed URL.

    The path (or the ``path`` query argument, see ``output_url``) is the file's
    raw bytes, percent-encoded; the file is opened once through ``RunTree``
    (no symlink at any component, regular files only) and sent from that fd.
    """

    auth_required = False

    def open_signed(self, key: str) -> tuple[OpenFile, str]:
        """The file the signed ``key`` (or its ``path`` query argument) names, open, and the name to save it as."""
        run_key, _, relative = key.partition("/")
        parts = components(self.query_path() or relative)
        signing.verify(self.settings["local_store"].secret, "GET", f"{run_key}/{url_path(parts)}",
                       self.get_query_argument("expires", None), self.get_query_argument("signature", None))
        kind_name, _, run_id = run_key.rpartition("-")
        if kind_name not in KINDS or not (run_id.isascii() and run_id.isdigit()) or not parts:
            raise NotFound("No such file")
        with RunTree(RunPaths.of(self.settings["runs_dir"], KINDS[kind_name], int(run_id)).output) as tree:
            return tree.open_file(parts), display_name(parts[-1])

    def head(self, key):
        opened, name = self.open_signed(key)
        with opened:
            self.size_headers(opened.size, name)

    async def get(self, key):
        opened, name = self.open_signed(key)
        with opened:
            span = self.size_headers(opened.size, name)
            if span is not None:
                await self.send_fd(opened.fd, *span)


#: the largest byte offset of a file (off_t)
MAX_LOG_OFFSET = 2**63 - 1


def log_offset(value: str) -> int:
    """The ``offset`` query argument of a log: 0 … 2^63-1 (negative counts as 0); InvalidInput otherwise."""
    try:
        offset = int(value)
    except ValueError:
        raise InvalidInput("offset must be an integer") from None
    if offset > MAX_LOG_OFFSET:
        raise InvalidInput(f"offset must be at most {MAX_LOG_OFFSET} (a byte offset in the log)")
    return max(offset, 0)


class RunLogHandler(RunBase):
    """GET …/log?offset=N[&follow=true]: the run's stdout+stderr from byte N.

    Added to the contract (the original shows logs in its UI). Without
    ``follow`` it answers what is there, with ``X-Log-Offset`` (where to go on
    from) and ``X-Run-Status``; with ``follow`` it streams until the run ends.
    An offset at or past the end answers an empty body; one that is no file
    offset at all (above 2^63-1, not an integer) is a 400.
    """

    async def get(self, run_id):
        run = self.find(run_id)
        offset = log_offset(self.get_query_argument("offset", "0"))
        follow = self.get_query_argument("follow", "false").lower() in ("true", "1", "yes")
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        while True:
            path = self.engine.log_path(run)
            chunk = b""
            if path and os.path.exists(path):
                with open(path, "rb") as f:
                    if offset < os.fstat(f.fileno()).st_size:  # past the end: nothing (a seek there may fail)
                        chunk = os.pread(f.fileno(), LOG_CHUNK, offset)
            self.db.refresh(run)
            if not follow:
                self.set_header("X-Log-Offset", str(offset + len(chunk)))
                self.set_header("X-Run-Status", run.status)
                self.finish(chunk)
                return
            if chunk:
                offset += len(chunk)
                self.write(chunk)
                await self.flush()
                continue
            if run.status not in st.ACTIVE:
                self.finish()
                return
            await asyncio.sleep(0.3)


class RunTagsHandler(RunBase):
    def get(self):
        tenant = self.require_tenant()
        tags = self.db.scalars(select(RunTag.tag).join(Run, Run.id == RunTag.run_id).where(
            Run.tenant_id == tenant.id, Run.kind == self.kind.name).distinct().order_by(RunTag.tag)).all()
        self.write_json(list(tags))


class RunSimpleListHandler(RunBase):
    def get(self):
        tenant = self.require_tenant()
        runs = self.db.scalars(select(Run).where(Run.tenant_id == tenant.id, Run.kind == self.kind.name)
                               .order_by(Run.id.desc())).all()
        self.write_json([apimodels.run_simple_model(r) for r in runs])


class RunMountHandler(RunBase):
    """GET /api/v2/{kind}/mount?Status=…: the runs of this kind a new run may mount at /kqi/parent.

    ``Status`` may repeat or be comma separated (``Completed,Killed``); without it every run is listed.
    """

    def get(self):
        tenant = self.require_tenant()
        statuses = {s.strip() for value in self.get_query_arguments("Status") for s in value.split(",") if s.strip()}
        unknown = statuses - set(st.STATUS_TYPES)
        if unknown:
            raise InvalidInput(f"Status: unknown {', '.join(sorted(unknown))}; one of {', '.join(st.STATUS_TYPES)}")
        query = select(Run).where(Run.tenant_id == tenant.id, Run.kind == self.kind.name)
        if statuses:
            query = query.where(Run.status.in_(sorted(statuses)))
        self.write_json([self.index_model(r) for r in self.db.scalars(query.order_by(Run.id.desc()))])


class NoTensorBoardHandler(RunBase):
    """PUT/GET/DELETE …/{id}/tensorboard of a kind without one (inference): a 400 that says so."""

    def refuse(self, run_id):
        run = self.find(run_id)
        raise InvalidInput(f"{self.kind.name.capitalize()} {run.id} has no TensorBoard: only trainings do")

    get = put = delete = refuse


class RunEventsHandler(RunBase):
    def get(self, run_id):
        run = self.find(run_id)
        self.write_json(apimodels.run_events_model(run, self.kind, self.image_pull(run)))


def handlers_for(kind: JobKind) -> list:
    """The run routes of one kind, each handler told its kind (and an action its final status)."""
    base = kind.routes_base
    of_kind = {"kind": kind}
    return [
        (f"{base}", RunListHandler, of_kind),
        (f"{base}/run", RunSubmitHandler, of_kind),
        (f"{base}/simple", RunSimpleListHandler, of_kind),
        (f"{base}/tags", RunTagsHandler, of_kind),
        (f"{base}/mount", RunMountHandler, of_kind),
        (rf"{base}/([0-9]+)", RunHandler, of_kind),
        (rf"{base}/([0-9]+)/copy-run", RunCopyHandler, of_kind),
        (rf"{base}/([0-9]+)/halt", RunActionHandler, {**of_kind, "final": st.KILLED}),
        (rf"{base}/([0-9]+)/user-cancel", RunActionHandler, {**of_kind, "final": st.USER_CANCELED}),
        (rf"{base}/([0-9]+)/complete", RunActionHandler, {**of_kind, "final": st.COMPLETED}),
        (rf"{base}/([0-9]+)/files", RunFilesHandler, of_kind),
        (rf"{base}/([0-9]+)/files/([0-9]+)", RunFileHandler, of_kind),
        (rf"{base}/([0-9]+)/files/([^/]+)/size", RunFileSizeHandler, of_kind),
        (rf"{base}/([0-9]+)/container-files", ContainerFilesHandler, of_kind),
        (rf"{base}/([0-9]+)/output", RunOutputFileHandler, of_kind),
        (rf"{base}/([0-9]+)/log", RunLogHandler, of_kind),
        (rf"{base}/([0-9]+)/events", RunEventsHandler, of_kind),
    ]


default_handlers = handlers_for(TRAINING) + handlers_for(INFERENCE) + [
    (rf"{INFERENCE.routes_base}/([0-9]+)/tensorboard", NoTensorBoardHandler, {"kind": INFERENCE}),
    (r"storage/runs/(.+)", RunOutputDownloadHandler),
]
