"""Upload API of the v2 contract: issue multipart parameters, then complete.

``GET /api/v2/upload/parameter?fileName&partSum&type`` answers
``{uris, partsSum, uploadId, key, fileName, storedPath}``: one absolute,
self-signed PUT URL per part. ``POST /api/v2/upload/complete`` with
``partETags: ["N+etag"]`` assembles the object and binds ``storedPath`` to it.
"""

from __future__ import annotations

import asyncio

from kqi_services import validation as v
from kqi_services.errors import Conflict, InvalidInput, NotFound
from kqi_services.orm import Upload, utcnow

from .base import APIHandler

#: the resource types of the contract, as the object key prefix each gets
RESOURCE_TYPES = {
    "Data": "data",
    "TrainingHistoryAttachedFiles": "training-attached-files",
    "InferenceHistoryAttachedFiles": "inference-attached-files",
    "PreprocessHistoryAttachedFiles": "preprocess-attached-files",
    "NotebookHistoryAttachedFiles": "notebook-attached-files",
}
MAX_PARTS = 10_000


def parse_part_etags(values) -> dict[int, str]:
    if not isinstance(values, list):
        raise InvalidInput("partETags must be a list of 'N+etag' strings")
    etags = {}
    for value in values:
        number, sep, etag = value.partition("+") if isinstance(value, str) else ("", "", "")
        if not sep or not (number.isascii() and number.isdigit()) or not etag:
            raise InvalidInput(f"partETags entry {value!r} must look like 'N+etag'")
        if int(number) in etags:
            raise InvalidInput(f"part {number} is listed twice")
        etags[int(number)] = etag
    return etags


class UploadParameterHandler(APIHandler):
    def get(self):
        tenant = self.require_tenant()
        file_name = v.safe_file_name(self.raw_query_argument("fileName"))
        try:
            part_count = int(self.get_query_argument("partSum", ""))
        except ValueError:
            raise InvalidInput("partSum must be an integer") from None
        if not 0 <= part_count <= MAX_PARTS:
            raise InvalidInput(f"partSum must be between 0 and {MAX_PARTS}")
        resource = self.get_query_argument("type", "")
        if resource not in RESOURCE_TYPES:
            raise InvalidInput("type must be one of " + ", ".join(RESOURCE_TYPES))
        store = self.store_for(tenant)
        ticket = store.begin_upload(f"{tenant.name}/{RESOURCE_TYPES[resource]}", file_name, part_count,
                                    self.service_url_base())
        self.db.add(Upload(upload_id=ticket.upload_id, tenant_id=tenant.id, user_id=self.principal.user.id,
                           storage_id=tenant.storage_id, key=ticket.key, stored_path=ticket.stored_path,
                           file_name=file_name, resource_type=resource, part_count=part_count))
        self.db.commit()
        self.write_json({
            "uris": ticket.part_urls,
            "partsSum": part_count,
            "uploadId": ticket.upload_id,
            "key": ticket.key,
            "fileName": file_name,
            "storedPath": ticket.stored_path,
        })


class UploadCompleteHandler(APIHandler):
    async def post(self):
        tenant = self.require_tenant()
        body = v.require_object(self.get_json_body())
        key = v.string(body, "key", required=True, strip=False)
        upload_id = v.string(body, "uploadId", required=True)
        etags = parse_part_etags(v.field(body, "partETags", list, required=True))
        upload = self.db.get(Upload, upload_id)
        if upload is None or upload.tenant_id != tenant.id or upload.key != key:
            raise NotFound(f"Upload {upload_id} not found")
        if upload.completed_at is not None:
            raise Conflict(f"Upload {upload_id} is already complete")
        store = self.store_for(tenant)
        # no transaction (and no pooled connection) is held while the store assembles and flushes;
        # the store's own marker lets only one complete of an upload through
        self.db.commit()
        stored = await asyncio.get_running_loop().run_in_executor(
            None, store.complete_upload, key, upload_id, etags, upload.part_count
        )
        upload.completed_at = utcnow()
        upload.size = stored.size
        upload.sha256 = stored.sha256
        self.db.commit()
        self.write_json({"key": key, "uploadId": upload_id, "partETags": body["partETags"],
                         # added
                         "storedPath": upload.stored_path, "size": stored.size, "sha256": stored.sha256})


default_handlers = [
    (r"api/v2/upload/parameter", UploadParameterHandler),
    (r"api/v2/upload/complete", UploadCompleteHandler),
]
