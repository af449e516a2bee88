"""Object stores behind one interface (see ``base``), chosen per storage endpoint.

Endpoint kind ``local`` is the embedded content-addressed store under the
state directory; ``s3`` talks to any S3 API with the endpoint's keys
(decrypted only here) in the bucket named by the endpoint's ``nfsRoot``
field (default ``kqi``).
"""

from __future__ import annotations

import os

from .base import ObjectStore, StorageError  # noqa: F401


class StoreRegistry:
    """One ObjectStore per storage endpoint, built on first use."""

    def __init__(self, local_store: ObjectStore, secret_box):
        self.local_store = local_store
        self.secret_box = secret_box
        self._stores: dict[tuple, ObjectStore] = {}

    def for_endpoint(self, endpoint) -> ObjectStore:
        if endpoint.kind == "local":
            return self.local_store
        secret = self.secret_box.decrypt(endpoint.secret_key_encrypted) or ""
        bucket = endpoint.nfs_root or "kqi"
        cache_key = (endpoint.id, endpoint.server_url, endpoint.access_key, secret, bucket)
        store = self._stores.get(cache_key)
        if store is None:
            from .s3 import S3Store

            store = self._stores[cache_key] = S3Store(endpoint.server_url, endpoint.access_key, secret, bucket)
        return store


def local_store_for(settings) -> ObjectStore:
    """The embedded local store of a platform: objects under the state dir, URLs signed with its key."""
    from kqi_services.accounts.secretbox import read_or_create_secret

    from .local import LocalStore

    secret = read_or_create_secret(os.path.join(settings.secrets_dir, "storage-url-key"))
    return LocalStore(os.path.join(settings.state_dir, "objects"), secret)
