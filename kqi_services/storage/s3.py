"""The S3 object store (MinIO, SeaweedFS, AWS): presigned URLs straight to the S3 server.

Clients PUT parts to presigned ``UploadPart`` URLs and GET presigned
``GetObject`` URLs, so no byte passes through the kqi service. Only the host
is signed into a presigned URL, so the Content-Type a client sends with a part
(the upstream CLI sends ``application/x-www-form-urlencoded``) is neither
checked nor kept: an object's type is fixed to ``application/octet-stream``
when its upload begins.

S3 servers differ from the local store in ways this module evens out:

* a multipart upload needs at least one part: an empty file (0 parts) is
  written with PutObject at complete, and its multipart upload aborted;
* S3 accepts a complete of fewer parts than were planned and, on some
  servers, a second complete: each complete first lists the uploaded parts
  and checks them against the client's ETags (UploadError, as locally);
* parts other than the last must be at least 5 MiB (S3's rule; the upstream
  CLI sends 16 MiB parts).
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from .base import (
    ObjectNotFound,
    ObjectStore,
    StorageError,
    StoredObject,
    UploadError,
    UploadTicket,
    check_file_name,
    check_part_count,
    check_stored_path,
    content_disposition,
    new_stored_path,
    normalize_etag,
)

CONTENT_TYPE = "application/octet-stream"
#: S3 error codes of a complete that the client can fix
_UPLOAD_ERRORS = {"NoSuchUpload", "InvalidPart", "InvalidPartOrder", "EntityTooSmall"}


def _client_config() -> Config:
    return Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        # botocore >= 1.36 adds CRC32 checksums that MinIO and SeaweedFS may reject
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=10,
        read_timeout=120,
    )


def _error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


class S3Store(ObjectStore):
    """Objects in one bucket of an S3 server, keyed by their stored path.

    ``public_endpoint_url`` is the S3 URL as clients reach it, when it differs
    from the one the service uses (presigned URLs carry their host).
    """

    kind = "s3"

    def __init__(self, endpoint_url: str, access_key: str, secret_key: str, bucket: str,
                 region: str = "us-east-1", public_endpoint_url: str | None = None):
        self.bucket = bucket
        self.region = region
        session = boto3.session.Session(aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                                        region_name=region)
        self.client = session.client("s3", endpoint_url=endpoint_url, config=_client_config())
        self.presigner = (session.client("s3", endpoint_url=public_endpoint_url, config=_client_config())
                          if public_endpoint_url else self.client)
        self._bucket_ready = False

    def ensure_bucket(self) -> None:
        """Create the bucket unless it exists (done once, before the first upload)."""
        if self._bucket_ready:
            return
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as e:
            if _error_code(e) not in ("404", "NoSuchBucket"):
                raise StorageError(f"Bucket {self.bucket} cannot be used: {e}") from None
            options = ({} if self.region == "us-east-1"
                       else {"CreateBucketConfiguration": {"LocationConstraint": self.region}})
            try:
                self.client.create_bucket(Bucket=self.bucket, **options)
            except ClientError as e:
                if _error_code(e) != "BucketAlreadyOwnedByYou":
                    raise StorageError(f"Bucket {self.bucket} cannot be created: {e}") from None
        self._bucket_ready = True

    # uploads -------------------------------------------------------------------------------
    def begin_upload(self, prefix: str, file_name: str, part_count: int, url_base: str,
                     expires_in: int = 24 * 3600) -> UploadTicket:
        check_part_count(part_count)
        key = new_stored_path(prefix, file_name, uuid.uuid4().hex)
        self.ensure_bucket()
        upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key,
                                                        ContentType=CONTENT_TYPE)["UploadId"]
        urls = [
            self.presigner.generate_presigned_url(
                "upload_part", ExpiresIn=expires_in,
                Params={"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": part},
            )
            for part in range(1, part_count + 1)
        ]
        return UploadTicket(upload_id, key, key, file_name, urls)

    def complete_upload(self, key: str, upload_id: str, etags: dict[int, str],
                        part_count: int | None = None) -> StoredObject:
        if part_count is not None and len(etags) != part_count:
            raise UploadError(f"The upload has {part_count} parts, the ETags name {len(etags)}")
        if set(etags) != set(range(1, len(etags) + 1)):
            raise UploadError(f"The ETags must name parts 1..{len(etags)}; got {sorted(etags)}")
        sizes = self._check_parts(key, upload_id, {part: normalize_etag(etag) for part, etag in etags.items()})
        if not etags:
            self._complete_empty(key, upload_id)
            return StoredObject(key, 0)
        parts = [{"PartNumber": part, "ETag": f'"{normalize_etag(etags[part])}"'} for part in sorted(etags)]
        try:
            self.client.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                  MultipartUpload={"Parts": parts})
        except ClientError as e:
            if _error_code(e) in _UPLOAD_ERRORS:
                raise UploadError(f"S3 refused to complete the upload: {e}") from None
            raise
        return StoredObject(key, sum(sizes))

    def _check_parts(self, key: str, upload_id: str, etags: dict[int, str]) -> list[int]:
        """The sizes of the parts the client names, if each was uploaded with that ETag."""
        uploaded: dict[int, dict[str, int]] = {}
        try:
            for page in self.client.get_paginator("list_parts").paginate(Bucket=self.bucket, Key=key,
                                                                        UploadId=upload_id):
                for part in page.get("Parts", []):
                    uploaded.setdefault(part["PartNumber"], {})[normalize_etag(part["ETag"])] = part["Size"]
        except ClientError as e:
            if _error_code(e) == "NoSuchUpload":
                raise UploadError(f"Upload {upload_id} is unknown or already completed") from None
            raise
        sizes = []
        for part in sorted(etags):
            if part not in uploaded:
                raise UploadError(f"Part {part} was not uploaded")
            if etags[part] not in uploaded[part]:
                raise UploadError(f"The ETag of part {part} does not match the uploaded part")
            sizes.append(uploaded[part][etags[part]])
        return sizes

    def _complete_empty(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as e:
            if _error_code(e) == "NoSuchUpload":
                raise UploadError(f"Upload {upload_id} is unknown or already completed") from None
            raise
        self.client.put_object(Bucket=self.bucket, Key=key, Body=b"", ContentType=CONTENT_TYPE)

    # bound objects -------------------------------------------------------------------------
    def put_file(self, prefix: str, file_name: str, path: str) -> StoredObject:
        key = new_stored_path(prefix, file_name, uuid.uuid4().hex)
        self.ensure_bucket()
        self.client.upload_file(path, self.bucket, key, ExtraArgs={"ContentType": CONTENT_TYPE})
        return StoredObject(key, os.path.getsize(path))

    def stat(self, stored_path: str) -> StoredObject:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=check_stored_path(stored_path))
        except ClientError as e:
            if _error_code(e) in ("404", "NoSuchKey", "NotFound"):
                raise ObjectNotFound(f"No such object: {stored_path}") from None
            raise
        return StoredObject(stored_path, head["ContentLength"])

    def download_url(self, stored_path: str, file_name: str, url_base: str, expires_in: int = 3600) -> str:
        params = {
            "Bucket": self.bucket,
            "Key": check_stored_path(stored_path),
            "ResponseContentDisposition": content_disposition(check_file_name(file_name)),
            "ResponseContentType": CONTENT_TYPE,
        }
        return self.presigner.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)

    def delete(self, stored_path: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=check_stored_path(stored_path))

    # housekeeping --------------------------------------------------------------------------
    def purge_abandoned(self, older_than_seconds: int) -> int:
        """Abort the bucket's multipart uploads initiated before then."""
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
        purged = 0
        try:
            for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket):
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] <= cutoff and self._abort(upload["Key"], upload["UploadId"]):
                        purged += 1
        except ClientError as e:
            if _error_code(e) != "NoSuchBucket":
                raise
        return purged

    def _abort(self, key: str, upload_id: str) -> bool:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as e:
            if _error_code(e) == "NoSuchUpload":
                return False
            raise
        return True
