"""Resource helpers of the kqi client, one class per API group, built on ``KqiClient.request()``.

Each returns the service's JSON models as plain dicts and lists (camelCase
keys, as the v2 contract names them). List filters are the contract's
PascalCase query parameters. Methods that move several files take
``progress_for``: a function of a file name that returns that file's
``progress(bytes_done, bytes_total)`` callback (or None).
"""

from __future__ import annotations

import codecs
import os
import posixpath

import requests

from .errors import KqiApiError
from .transfer import safe_join

#: the statuses of a run that has ended (the service's ``statusType`` Closed, Failed and Error)
FINISHED = ("Completed", "UserCanceled", "Failed", "Killed", "OOMKilled", "Error")


def given(**fields) -> dict:
    """The fields that are not None: an edit leaves out what it does not change (as the upstream SDK sends it)."""
    return {k: v for k, v in fields.items() if v is not None}


def _callback(progress_for, name: str):
    return progress_for(name) if progress_for else None


class Resource:
    def __init__(self, client):
        self.client = client


class Account(Resource):
    def login(self, user: str, password: str, *, tenant: int | None = None, expires_in: int | None = None) -> dict:
        """Log in; the login model ``{token, userName, tenantId, tenantName, expiresIn}``. Stores nothing."""
        body = given(userName=user, password=password, tenantId=tenant, expiresIn=expires_in)
        return self.client.post("/account/login", body)

    def get(self) -> dict:
        """The account: user name, selected tenant, the tenants it belongs to."""
        return self.client.get("/account")

    def switch_tenant(self, tenant_id: int, *, expires_in: int | None = None) -> dict:
        """A new token bound to ``tenant_id`` (the login model); the client keeps using its own token."""
        body = {"expiresIn": expires_in} if expires_in is not None else {}
        return self.client.post(f"/account/tenants/{int(tenant_id)}/token", body)


class Tenants(Resource):
    """System admin: ``/admin/tenants``."""

    def list(self) -> list:
        return self.client.get("/admin/tenants")

    def get(self, tenant_id: int) -> dict:
        return self.client.get(f"/admin/tenants/{int(tenant_id)}")

    def create(self, body: dict) -> dict:
        return self.client.post("/admin/tenants", body)

    def update(self, tenant_id: int, body: dict) -> dict:
        return self.client.put(f"/admin/tenants/{int(tenant_id)}", body)

    def delete(self, tenant_id: int) -> dict:
        return self.client.delete(f"/admin/tenants/{int(tenant_id)}")


class Data(Resource):
    def list(self, *, count: int = 1000, id=None, name=None, memo=None, created_at=None, created_by=None,
             tags=()) -> list:
        """Up to ``count`` data, newest first, filtered as the web UI filters them."""
        params = [("Id", id), ("Name", name), ("Memo", memo), ("CreatedAt", created_at),
                  ("CreatedBy", created_by)] + [("tag", t) for t in tags or ()]
        return self.client.paged("/data", [(k, v) for k, v in params if v is not None], count)

    def get(self, data_id: int) -> dict:
        return self.client.get(f"/data/{int(data_id)}")

    def create(self, name: str, *, memo: str | None = None, tags=()) -> dict:
        return self.client.post("/data", given(name=name, memo=memo, tags=list(tags or ())))

    def update(self, data_id: int, *, name=None, memo=None, tags=None) -> dict:
        body = given(name=name, memo=memo, tags=list(tags) if tags is not None else None)
        return self.client.put(f"/data/{int(data_id)}", body)

    def delete(self, data_id: int) -> None:
        self.client.delete(f"/data/{int(data_id)}", timeout=self.client.timeout * 30)

    def files(self, data_id: int, *, with_url: bool = False) -> list:
        return self.client.get(f"/data/{int(data_id)}/files", params={"withUrl": "true" if with_url else None})

    def upload_files(self, data_id: int, paths, *, progress_for=None) -> dict:
        """Upload local files and register them with the data; ``{id, files}`` as the service answers."""
        uploaded = [self.client.upload(p, "Data", progress=_callback(progress_for, os.path.basename(p)))
                    for p in paths]
        body = {"files": [{"fileName": u["fileName"], "storedPath": u["storedPath"]} for u in uploaded]}
        return self.client.post(f"/data/{int(data_id)}/files", body, timeout=self.client.timeout * 30)

    def download_files(self, data_id: int, directory: str, *, progress_for=None) -> list[str]:
        """Every file of the data into ``directory``; the local paths."""
        return [self.client.download(f["url"], directory, f["fileName"],
                                     progress=_callback(progress_for, f["fileName"]))
                for f in self.files(data_id, with_url=True)]

    def delete_file(self, data_id: int, file_id: int) -> None:
        self.client.delete(f"/data/{int(data_id)}/files/{int(file_id)}")


class Datasets(Resource):
    def list(self, *, count: int = 1000, id=None, name=None, memo=None, created_at=None) -> list:
        params = {"Id": id, "Name": name, "Memo": memo, "CreatedAt": created_at}
        return self.client.paged("/datasets", {k: v for k, v in params.items() if v is not None}, count)

    def get(self, dataset_id: int) -> dict:
        return self.client.get(f"/datasets/{int(dataset_id)}")

    def create(self, body: dict) -> dict:
        """``{name, memo, entries: {type: [{id}]}}`` (or ``isFlat`` with ``flatEntries``)."""
        return self.client.post("/datasets", body)

    def update(self, dataset_id: int, body: dict) -> dict:
        return self.client.put(f"/datasets/{int(dataset_id)}", body)

    def update_meta_info(self, dataset_id: int, *, name=None, memo=None) -> dict:
        return self.client.patch(f"/datasets/{int(dataset_id)}", given(name=name, memo=memo))

    def delete(self, dataset_id: int) -> None:
        self.client.delete(f"/datasets/{int(dataset_id)}")

    def files(self, dataset_id: int, *, with_url: bool = False) -> dict:
        return self.client.get(f"/datasets/{int(dataset_id)}/files",
                               params={"withUrl": "true" if with_url else None})

    def path_pairs(self, dataset_id: int) -> list:
        return self.client.get(f"/datasets/{int(dataset_id)}/pathpairs")

    def data_types(self) -> list:
        return self.client.get("/datatypes")

    def download_files(self, dataset_id: int, directory: str, *, types=(), progress_for=None) -> list[str]:
        """The dataset's files as ``{type}/{dataId}/{file}`` (flat: ``{dataId}/{file}``); the local paths."""
        listing = self.files(dataset_id, with_url=True)
        wanted = []
        if listing.get("isFlat"):
            wanted = [(os.path.join(directory, str(f["id"])), f) for f in listing.get("flatEntries") or []]
        else:
            for entry in listing.get("entries") or []:
                if not types or entry["type"] in types:
                    wanted += [(os.path.join(directory, entry["type"], str(f["id"])), f) for f in entry["files"]]
        return [self.client.download(f["url"], where, f["fileName"], progress=_callback(progress_for, f["fileName"]))
                for where, f in wanted]


class Runs(Resource):
    """The run routes every job kind shares, under ``/{base}``: the kinds differ only in ``base`` and
    ``attached_type`` (:class:`Trainings`, :class:`Inferences`, :class:`PreprocessingRuns`)."""

    #: the API path segment of the kind's routes (``/training/3``, ``/inferences/3``)
    base = "training"
    #: the upload type of files attached to a run of the kind
    attached_type = "TrainingHistoryAttachedFiles"

    def path(self, run_id=None, *rest) -> str:
        return "/".join([f"/{self.base}"] + ([str(int(run_id))] if run_id is not None else []) + list(rest))

    def list(self, *, count: int = 1000, id=None, name=None, started_at=None, started_by=None, data_set=None,
             memo=None, status=None, entry_point=None, tags=()) -> list:
        params = [("Id", id), ("Name", name), ("StartedAt", started_at), ("StartedBy", started_by),
                  ("DataSet", data_set), ("Memo", memo), ("Status", status), ("EntryPoint", entry_point)]
        params += [("tag", t) for t in tags or ()]
        return self.client.paged(self.path(), [(k, v) for k, v in params if v is not None], count)

    def get(self, run_id: int) -> dict:
        return self.client.get(self.path(run_id))

    def create(self, body: dict) -> dict:
        """Submit a run (``POST /{base}/run``) with a CreateInputModel; the new run's model."""
        return self.client.post(self.path() + "/run", body)

    def update(self, run_id: int, *, name=None, memo=None, favorite=None, tags=None) -> dict:
        body = given(name=name, memo=memo, favorite=favorite, tags=list(tags) if tags is not None else None)
        return self.client.put(self.path(run_id), body)

    def delete(self, run_id: int) -> None:
        self.client.delete(self.path(run_id))

    def halt(self, run_id: int) -> dict:
        return self.client.post(self.path(run_id, "halt"))

    def complete(self, run_id: int) -> dict:
        return self.client.post(self.path(run_id, "complete"))

    def user_cancel(self, run_id: int) -> dict:
        return self.client.post(self.path(run_id, "user-cancel"))

    def files(self, run_id: int, *, with_url: bool = False) -> list:
        return self.client.get(self.path(run_id, "files"), params={"withUrl": "true" if with_url else None})

    def upload_file(self, run_id: int, path: str, *, progress=None) -> dict:
        """Upload a local file and attach it to the run."""
        uploaded = self.client.upload(path, self.attached_type, progress=progress)
        return self.client.post(self.path(run_id, "files"), {"fileName": uploaded["fileName"],
                                                             "storedPath": uploaded["storedPath"]})

    def delete_file(self, run_id: int, file_id: int) -> None:
        self.client.delete(self.path(run_id, "files", str(int(file_id))))

    def download_files(self, run_id: int, directory: str, *, file_ids=(), progress_for=None) -> list[str]:
        """The attached files (the log, output.zip, uploads), or those of ``file_ids``; the local paths."""
        return [self.client.download(f["url"], directory, f["fileName"],
                                     progress=_callback(progress_for, f["fileName"]))
                for f in self.files(run_id, with_url=True) if not file_ids or f["fileId"] in file_ids]

    def container_files(self, run_id: int, path: str = "/", *, with_url: bool = False) -> dict:
        """One directory of the run's ``/kqi/output``: ``{dirs, files, exceeded}``."""
        return self.client.get(self.path(run_id, "container-files"),
                               params={"path": path, "withUrl": "true" if with_url else None})

    def walk_container_files(self, run_id: int, source: str = "/", *, with_url: bool = False):
        """Every file under ``source`` of ``/kqi/output``, as (its path, its model)."""
        listing = self.container_files(run_id, source, with_url=with_url)
        for f in listing["files"]:
            yield posixpath.join(source, f["fileName"]), f
        for d in listing["dirs"]:
            yield from self.walk_container_files(run_id, posixpath.join(source, d["dirName"]), with_url=with_url)

    def download_container_files(self, run_id: int, directory: str, *, source: str | None = None, file_paths=(),
                                 progress_for=None) -> list[str]:
        """Files of ``/kqi/output`` into ``directory``, keeping their paths; the local paths.

        As the upstream CLI: each of ``file_paths``, then everything under
        ``source`` (the whole output when neither is given).
        """
        got = []
        for wanted in file_paths:
            head, tail = posixpath.split(posixpath.join("/", wanted))
            for f in self.container_files(run_id, head, with_url=True)["files"]:
                if f["fileName"] == tail:
                    got.append(self.client.download(f["url"], safe_join(directory, head), tail,
                                                    progress=_callback(progress_for, wanted)))
        if source is not None or not file_paths:
            for path, f in self.walk_container_files(run_id, posixpath.join("/", source or ""), with_url=True):
                got.append(self.client.download(f["url"], safe_join(directory, posixpath.dirname(path)),
                                                f["fileName"], progress=_callback(progress_for, path)))
        return got

    def log(self, run_id: int, offset: int = 0) -> tuple[bytes, int, str]:
        """What the log holds from byte ``offset`` (up to 1 MiB): (bytes, next offset, run status)."""
        response = self.client.request("GET", self.path(run_id, "log"), params={"offset": offset}, stream=True)
        with response:
            chunk = response.content
        return chunk, int(response.headers.get("X-Log-Offset", offset + len(chunk))), \
            response.headers.get("X-Run-Status", "")

    def follow_log(self, run_id: int, offset: int = 0):
        """Yield the run's stdout+stderr as text from byte ``offset``, live, until the run has ended.

        Streams ``GET /{base}/{id}/log?offset=N&follow=true``; when the stream
        breaks off (a proxy or read timeout) it reconnects from where it was,
        and it stops only once the service reports a finished status and
        nothing is left to read. Ask :meth:`get` for that final status.
        """
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while True:
            try:
                response = self.client.request("GET", self.path(run_id, "log"),
                                               params={"offset": offset, "follow": "true"}, stream=True,
                                               timeout=(self.client.timeout, max(self.client.timeout, 60)))
                with response:
                    for chunk in response.iter_content(chunk_size=None):
                        offset += len(chunk)
                        text = decoder.decode(chunk)
                        if text:
                            yield text
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError):
                pass  # reconnect below
            except KqiApiError as e:
                if e.status != 0:
                    raise
            chunk, offset, status = self.log(run_id, offset)
            text = decoder.decode(chunk)
            if text:
                yield text
            if status in FINISHED and not chunk:
                tail = decoder.decode(b"", final=True)
                if tail:
                    yield tail
                return

    def wait(self, run_id: int, *, on_output=None) -> dict:
        """Follow the log until the run ends (each text piece to ``on_output``); the run's final model."""
        for text in self.follow_log(run_id):
            if on_output:
                on_output(text)
        return self.get(run_id)


class Trainings(Runs):
    base = "training"
    attached_type = "TrainingHistoryAttachedFiles"

    def tensorboard_halt(self, run_id: int) -> None:
        self.client.delete(self.path(run_id, "tensorboard"))


class Inferences(Runs):
    """``/inferences``: a training's twin; details add ``outputValue`` (the first line of its value.txt)."""

    base = "inferences"
    attached_type = "InferenceHistoryAttachedFiles"


class PreprocessingRuns(Runs):
    """The run-level routes of a preprocessing history, by its ``runId`` (``/preprocessing/{runId}/log``…)."""

    base = "preprocessing"
    attached_type = "PreprocessHistoryAttachedFiles"


class Preprocessings(Resource):
    """``/preprocessings``: definitions, and their histories (one per input data; each history is a run).

    A history's run-level routes (its live log, ``/kqi/output``) are those of
    :attr:`runs`, by the history's ``runId``.
    """

    def __init__(self, client):
        super().__init__(client)
        self.runs = PreprocessingRuns(client)

    def path(self, preprocess_id=None, *rest) -> str:
        return "/".join(["/preprocessings"] + ([str(int(preprocess_id))] if preprocess_id is not None else [])
                        + [str(r) for r in rest])

    def list(self, *, count: int = 1000, id=None, name=None, memo=None, created_at=None) -> list:
        params = {"Id": id, "Name": name, "Memo": memo, "CreatedAt": created_at}
        return self.client.paged(self.path(), {k: v for k, v in params.items() if v is not None}, count)

    def get(self, preprocess_id: int) -> dict:
        return self.client.get(self.path(preprocess_id))

    def create(self, body: dict) -> dict:
        """``{name, entryPoint, containerImage: {registryId, image, tag}, gitModel: {…}, memo, cpu, memory, gpu}``."""
        return self.client.post(self.path(), body)

    def update(self, preprocess_id: int, body: dict) -> dict:
        """Replace the definition (refused with 409 once it has histories)."""
        return self.client.put(self.path(preprocess_id), body)

    def update_meta_info(self, preprocess_id: int, *, name=None, memo=None, cpu=None, memory=None,
                         gpu=None) -> dict:
        body = given(name=name, memo=memo, cpu=cpu, memory=memory, gpu=gpu)
        return self.client.patch(self.path(preprocess_id), body)

    def delete(self, preprocess_id: int) -> None:
        self.client.delete(self.path(preprocess_id))

    def run(self, preprocess_id: int, data_ids, *, cpu: int, memory: int, gpu: int, partition=None,
            options=None) -> list:
        """Run it on each of ``data_ids`` in one request (every history is made, or none); the new histories."""
        body = given(dataIds=[int(d) for d in data_ids], cpu=cpu, memory=memory, gpu=gpu, partition=partition,
                     options=dict(options) if options else None)
        return self.client.post(self.path(preprocess_id, "run"), body)

    def histories(self, preprocess_id: int) -> list:
        return self.client.get(self.path(preprocess_id, "histories"))

    def history(self, preprocess_id: int, data_id: int) -> dict:
        return self.client.get(self.path(preprocess_id, "histories", int(data_id)))

    def delete_history(self, preprocess_id: int, data_id: int) -> list[int]:
        """Delete the history and the data it produced; the ids of that data."""
        made = self.client.get(self.path(preprocess_id, "histories", int(data_id))).get("outputDataIds") or []
        self.client.delete(self.path(preprocess_id, "histories", int(data_id)))
        return made

    def halt_history(self, preprocess_id: int, data_id: int) -> dict:
        return self.client.post(self.path(preprocess_id, "histories", int(data_id), "halt"))

    def complete_history(self, preprocess_id: int, data_id: int) -> dict:
        return self.client.post(self.path(preprocess_id, "histories", int(data_id), "complete"))

    def history_events(self, preprocess_id: int, data_id: int) -> list:
        return self.client.get(self.path(preprocess_id, "histories", int(data_id), "events"))

    def history_files(self, preprocess_id: int, data_id: int, *, with_url: bool = False) -> list:
        return self.client.get(self.path(preprocess_id, "histories", int(data_id), "files"),
                               params={"withUrl": "true" if with_url else None})

    def open_history(self, preprocess_id: int, data_id: int) -> dict:
        """A history made outside the platform (status ``Opened``), to be filled by :meth:`add_output_data`."""
        return self.client.post(self.path(preprocess_id, "histories", int(data_id)))

    def add_output_data(self, preprocess_id: int, data_id: int, name: str, paths, *, memo=None, tags=(),
                        progress_for=None) -> dict:
        """Upload local files as one output data ``name`` of an opened history; the history."""
        uploaded = [self.client.upload(p, "Data", progress=_callback(progress_for, os.path.basename(p)))
                    for p in paths]
        body = given(name=name, memo=memo, tags=list(tags or ()),
                     files=[{"fileName": u["fileName"], "storedPath": u["storedPath"]} for u in uploaded])
        return self.client.post(self.path(preprocess_id, "histories", int(data_id), "data"), body,
                                timeout=self.client.timeout * 30)

    def build_history(self, preprocess_id: int, data_id: int, source: str, *, memo=None, tags=(),
                      existing: bool = False, progress_for=None) -> dict:
        """Record a preprocessing done elsewhere, as the upstream CLI does; the completed history.

        Each directory of ``source`` becomes one output data of that name (its
        files, found recursively, by their base names). ``existing`` fills a
        history already opened instead of opening one.
        """
        if not existing:
            self.open_history(preprocess_id, data_id)
        for entry in sorted(os.listdir(source)):
            if os.path.isdir(os.path.join(source, entry)):
                paths = sorted(os.path.join(root, f) for root, _, files in os.walk(os.path.join(source, entry))
                               for f in files)
                self.add_output_data(preprocess_id, data_id, entry, paths, memo=memo, tags=tags,
                                     progress_for=progress_for)
        return self.complete_history(preprocess_id, data_id)

    def run_id(self, preprocess_id: int, data_id: int) -> int:
        """The run of a history (for its log and ``/kqi/output``); ValueError for one built elsewhere."""
        history = self.history(preprocess_id, data_id)
        if history.get("runId") is None:
            raise ValueError(f"history {preprocess_id}.{data_id} has no run: it was built outside the platform")
        return int(history["runId"])


class Notebooks(Resource):
    """Notebook records (``/notebook/...`` of the v2 contract)."""

    def list(self, *, count: int = 1000, id=None, name=None, created_at=None, created_by=None, memo=None,
             status=None) -> list:
        params = {"Id": id, "Name": name, "CreatedAt": created_at, "CreatedBy": created_by, "Memo": memo,
                  "Status": status}
        return self.client.paged("/notebook", {k: v for k, v in params.items() if v is not None}, count)

    def get(self, notebook_id: int) -> dict:
        return self.client.get(f"/notebook/{int(notebook_id)}")

    def run(self, body: dict) -> dict:
        """Start a notebook (``POST /notebook/run``) with a CreateInputModel."""
        return self.client.post("/notebook/run", body)

    def rerun(self, notebook_id: int, body: dict | None = None) -> dict:
        return self.client.post(f"/notebook/{int(notebook_id)}/rerun", body or {})

    def update(self, notebook_id: int, *, name=None, memo=None, favorite=None) -> dict:
        return self.client.put(f"/notebook/{int(notebook_id)}", given(name=name, memo=memo, favorite=favorite))

    def halt(self, notebook_id: int) -> dict:
        return self.client.post(f"/notebook/{int(notebook_id)}/halt")

    def endpoint(self, notebook_id: int) -> dict:
        return self.client.get(f"/notebook/{int(notebook_id)}/endpoint")

    def delete(self, notebook_id: int) -> None:
        self.client.delete(f"/notebook/{int(notebook_id)}")
