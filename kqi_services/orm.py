"""SQLAlchemy models of the kqi database: accounts, tenants, endpoints, nodes, tokens.

The schema is owned by Alembic (``kqi_services/migrations``); ``Base.metadata``
is the source the migrations were written from. Ids are int64, as the
KAMONOHASHI v2 contract wants.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# a naming convention keeps constraint names stable across SQLite and PostgreSQL,
# so Alembic can alter them by name (as jupyterhub/orm.py does)
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# int64 primary keys that still autoincrement on SQLite
Id = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """Timezone-naive UTC now, as stored in the database."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    @classmethod
    def find(cls, db, id):
        """Return the row with this primary key, or None."""
        return db.get(cls, id)


class Audited:
    """createdBy/createdAt/modifiedBy/modifiedAt, as every v2 output model carries."""

    created_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    modified_by: Mapped[str | None] = mapped_column(String(255))
    modified_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Role(Audited, Base):
    """A system role (admin) or a tenant role (user, manager)."""

    __tablename__ = "roles"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    display_name: Mapped[str] = mapped_column(String(255))
    is_system_role: Mapped[bool] = mapped_column(Boolean, default=False)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    is_not_editable: Mapped[bool] = mapped_column(Boolean, default=False)


class GitEndpoint(Audited, Base):
    """A git service models are cloned from: ``{repository_url}/{owner}/{repo}.git``."""

    __tablename__ = "git_endpoints"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    service_type: Mapped[int] = mapped_column(Integer)
    repository_url: Mapped[str] = mapped_column(String(1024))
    api_url: Mapped[str] = mapped_column(String(1024))
    is_not_editable: Mapped[bool] = mapped_column(Boolean, default=False)


class RegistryEndpoint(Audited, Base):
    """A container image registry."""

    __tablename__ = "registry_endpoints"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    host: Mapped[str] = mapped_column(String(1024))
    port_no: Mapped[int] = mapped_column(Integer)
    service_type: Mapped[int] = mapped_column(Integer)
    project_name: Mapped[str | None] = mapped_column(String(255))
    api_url: Mapped[str] = mapped_column(String(1024))
    registry_url: Mapped[str] = mapped_column(String(1024))
    is_not_editable: Mapped[bool] = mapped_column(Boolean, default=False)


class StorageEndpoint(Audited, Base):
    """An object store: ``kind`` is ``local`` (content-addressed on disk) or ``s3``."""

    __tablename__ = "storage_endpoints"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32), default="s3")
    server_url: Mapped[str] = mapped_column(String(1024))
    access_key: Mapped[str] = mapped_column(String(1024))
    secret_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    nfs_server: Mapped[str] = mapped_column(String(1024), default="")
    nfs_root: Mapped[str] = mapped_column(String(1024), default="")


class Tenant(Audited, Base):
    """The unit of use: members, quota and endpoints; mirrored as a hub group."""

    __tablename__ = "tenants"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    display_name: Mapped[str] = mapped_column(String(255))
    storage_id: Mapped[int] = mapped_column(ForeignKey("storage_endpoints.id"))
    default_git_id: Mapped[int | None] = mapped_column(ForeignKey("git_endpoints.id"))
    default_registry_id: Mapped[int | None] = mapped_column(ForeignKey("registry_endpoints.id"))
    available_infinite_time_notebook: Mapped[bool] = mapped_column(Boolean, default=False)
    quota_cpu: Mapped[int] = mapped_column(Integer, default=0)
    quota_memory: Mapped[int] = mapped_column(Integer, default=0)
    quota_gpu: Mapped[int] = mapped_column(Integer, default=0)

    gits: Mapped[list[TenantGit]] = relationship(cascade="all, delete-orphan")
    registries: Mapped[list[TenantRegistry]] = relationship(cascade="all, delete-orphan")
    memberships: Mapped[list[Membership]] = relationship(
        back_populates="tenant", cascade="all, delete-orphan"
    )

    @classmethod
    def find_by_name(cls, db, name):
        return db.scalar(select(cls).where(cls.name == name))


class TenantGit(Base):
    __tablename__ = "tenant_gits"
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    git_id: Mapped[int] = mapped_column(ForeignKey("git_endpoints.id"), primary_key=True)


class TenantRegistry(Base):
    __tablename__ = "tenant_registries"
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    registry_id: Mapped[int] = mapped_column(ForeignKey("registry_endpoints.id"), primary_key=True)


class User(Audited, Base):
    """An account. Names are lowercase, as the hub keeps them.

    ``password_hash`` is bcrypt and null for users who authenticate elsewhere
    (LDAP, OAuth). ``failed_logins`` and ``locked_until`` implement the lockout,
    kept here so that it survives hub restarts.
    """

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    service_type: Mapped[int] = mapped_column(Integer, default=1)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    @classmethod
    def find_by_name(cls, db, name):
        return db.scalar(select(cls).where(cls.name == name.lower()))

    def membership(self, tenant_id):
        """This user's membership of a tenant, or None."""
        for m in self.memberships:
            if m.tenant_id == tenant_id:
                return m
        return None

    @property
    def default_membership(self):
        for m in self.memberships:
            if m.is_default:
                return m
        return self.memberships[0] if self.memberships else None


class Membership(Base):
    """A user's place in a tenant: default flag and tenant roles."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "tenant_id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    role_ids: Mapped[str] = mapped_column(String(255), default="")

    user: Mapped[User] = relationship(back_populates="memberships")
    tenant: Mapped[Tenant] = relationship(back_populates="memberships")

    @property
    def roles(self) -> list[int]:
        return [int(r) for r in self.role_ids.split(",") if r]

    @roles.setter
    def roles(self, ids):
        self.role_ids = ",".join(str(int(r)) for r in sorted(set(ids)))


class Credential(Base):
    """A user's secret for one git or registry endpoint, encrypted at rest."""

    __tablename__ = "credentials"
    __table_args__ = (UniqueConstraint("user_id", "kind", "endpoint_id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # "git" | "registry"
    endpoint_id: Mapped[int] = mapped_column(BigInteger)
    user_name: Mapped[str | None] = mapped_column(String(255))
    secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)


class Node(Audited, Base):
    """A machine jobs and notebooks run on, with its capacity and partition."""

    __tablename__ = "nodes"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    memo: Mapped[str | None] = mapped_column(Text)
    partition: Mapped[str | None] = mapped_column(String(255))
    access_level: Mapped[int] = mapped_column(Integer, default=2)
    tensorboard_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    notebook_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    cpu: Mapped[int] = mapped_column(Integer, default=1)
    memory_gb: Mapped[int] = mapped_column(Integer, default=1)
    gpu: Mapped[int] = mapped_column(Integer, default=0)
    assigned_tenant_ids: Mapped[str] = mapped_column(String(1024), default="")


class TokenTenant(Base):
    """The tenant a token is bound to, keyed by the token's SHA-256."""

    __tablename__ = "token_tenants"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    hub_token_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)


# data and datasets ---------------------------------------------------------------------


class Upload(Base):
    """An upload ticket issued to a tenant: registration accepts only its own stored paths."""

    __tablename__ = "uploads"
    upload_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    storage_id: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[str] = mapped_column(String(1024))
    stored_path: Mapped[str] = mapped_column(String(1024), unique=True)
    file_name: Mapped[str] = mapped_column(String(1024))
    resource_type: Mapped[str] = mapped_column(String(64))
    part_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))


class Data(Audited, Base):
    """A named set of files in a tenant (データ)."""

    __tablename__ = "data"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    display_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(256))
    memo: Mapped[str | None] = mapped_column(Text)
    is_raw: Mapped[bool] = mapped_column(Boolean, default=True)
    #: the input data of the preprocessing history that made it
    parent_data_id: Mapped[int | None] = mapped_column(BigInteger)
    #: the preprocessing history (a run) that made it; deleting that history deletes it
    produced_by_run_id: Mapped[int | None] = mapped_column(BigInteger, index=True)

    files: Mapped[list[DataFile]] = relationship(
        back_populates="data", cascade="all, delete-orphan", order_by="DataFile.id"
    )
    tags: Mapped[list[DataTag]] = relationship(cascade="all, delete-orphan", order_by="DataTag.tag")


class DataTag(Base):
    __tablename__ = "data_tags"
    data_id: Mapped[int] = mapped_column(ForeignKey("data.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(256), primary_key=True)


class DataFile(Audited, Base):
    """One registered file of a data: a name bound to a stored object."""

    __tablename__ = "data_files"
    __table_args__ = (UniqueConstraint("data_id", "file_name"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    data_id: Mapped[int] = mapped_column(ForeignKey("data.id", ondelete="CASCADE"), index=True)
    file_name: Mapped[str] = mapped_column(String(1024))
    stored_path: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str | None] = mapped_column(String(64))

    data: Mapped[Data] = relationship(back_populates="files")


class DataType(Base):
    """training, validation, testing: the kinds of entries of a dataset."""

    __tablename__ = "data_types"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class DataSet(Audited, Base):
    """Data arranged by data type (or flat) for runs (データセット)."""

    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    display_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(256))
    memo: Mapped[str | None] = mapped_column(Text)
    is_flat: Mapped[bool] = mapped_column(Boolean, default=False)
    #: set when a run used the dataset: its entries may no longer change
    is_locked: Mapped[bool] = mapped_column(Boolean, default=False)

    entries: Mapped[list[DataSetEntry]] = relationship(
        cascade="all, delete-orphan", order_by="DataSetEntry.id"
    )


class DataSetEntry(Base):
    __tablename__ = "dataset_entries"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    data_type_id: Mapped[int | None] = mapped_column(ForeignKey("data_types.id"))
    data_id: Mapped[int] = mapped_column(ForeignKey("data.id"), index=True)


# runs: trainings, preprocessing and inference share one table and one engine --------------


class Preprocessing(Audited, Base):
    """A preprocessing definition (前処理): what to run on data; each run on one data is a history (a Run).

    Only the name is required; a run on the platform needs every field but the memo.
    """

    __tablename__ = "preprocessings"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(256))
    memo: Mapped[str | None] = mapped_column(Text)
    entry_point: Mapped[str | None] = mapped_column(Text)
    registry_id: Mapped[int | None] = mapped_column(BigInteger)
    image: Mapped[str | None] = mapped_column(String(512))
    image_tag: Mapped[str | None] = mapped_column(String(255))
    git_id: Mapped[int | None] = mapped_column(BigInteger)
    git_owner: Mapped[str | None] = mapped_column(String(255))
    git_repository: Mapped[str | None] = mapped_column(String(255))
    git_branch: Mapped[str | None] = mapped_column(String(255))
    git_commit: Mapped[str | None] = mapped_column(String(64))
    cpu: Mapped[int | None] = mapped_column(Integer)
    memory: Mapped[int | None] = mapped_column(Integer)
    gpu: Mapped[int | None] = mapped_column(Integer)


class Run(Audited, Base):
    """One job: a training, a preprocessing or an inference (``kind``).

    ``status`` holds the strings of the original server (Pending, Running,
    Completed, UserCanceled, Failed, Killed, OOMKilled, Error); ``phase`` where
    the run is (queued, preparing, starting, running, ended). Both change only
    through ``jobs.status.apply``.
    """

    __tablename__ = "runs"
    __table_args__ = (UniqueConstraint("preprocessing_id", "input_data_id", name="uq_runs_preprocessing_input"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    display_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(256))
    memo: Mapped[str | None] = mapped_column(Text)
    favorite: Mapped[bool] = mapped_column(Boolean, default=False)
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"))
    git_id: Mapped[int | None] = mapped_column(BigInteger)
    git_owner: Mapped[str | None] = mapped_column(String(255))
    git_repository: Mapped[str | None] = mapped_column(String(255))
    git_branch: Mapped[str | None] = mapped_column(String(255))
    git_commit: Mapped[str | None] = mapped_column(String(64))
    registry_id: Mapped[int | None] = mapped_column(BigInteger)
    image: Mapped[str | None] = mapped_column(String(512))
    image_tag: Mapped[str | None] = mapped_column(String(255))
    entry_point: Mapped[str] = mapped_column(Text)
    options_json: Mapped[str] = mapped_column(Text, default="{}")
    cpu: Mapped[int] = mapped_column(Integer)
    memory: Mapped[int] = mapped_column(Integer)
    gpu: Mapped[int] = mapped_column(Integer, default=0)
    partition: Mapped[str | None] = mapped_column(String(255))
    zip_output: Mapped[bool] = mapped_column(Boolean, default=False)
    local_dataset: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(32), default="Pending", index=True)
    phase: Mapped[str] = mapped_column(String(16), default="queued", server_default="queued", index=True)
    condition_note: Mapped[str | None] = mapped_column(Text)
    node: Mapped[str | None] = mapped_column(String(255))
    gpu_ids: Mapped[str] = mapped_column(String(255), default="")
    queued_order: Mapped[int] = mapped_column(BigInteger, default=0)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: the status a halt, user-cancel or complete asked for while the run was running
    end_requested: Mapped[str | None] = mapped_column(String(32))
    run_token_id: Mapped[str | None] = mapped_column(String(64))
    #: notebooks: seconds of life per start (0 = unlimited), when the current start ends, its hub server
    expires_in: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    server_name: Mapped[str | None] = mapped_column(String(255))
    #: a preprocessing history: its definition and its input data (one history per pair)
    preprocessing_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    input_data_id: Mapped[int | None] = mapped_column(BigInteger, index=True)

    tags: Mapped[list[RunTag]] = relationship(cascade="all, delete-orphan", order_by="RunTag.tag")
    parents: Mapped[list[RunParent]] = relationship(
        cascade="all, delete-orphan", foreign_keys="RunParent.run_id", order_by="RunParent.position"
    )
    files: Mapped[list[RunFile]] = relationship(cascade="all, delete-orphan", order_by="RunFile.id")


class RunTag(Base):
    __tablename__ = "run_tags"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(256), primary_key=True)


class RunParent(Base):
    __tablename__ = "run_parents"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class RunFile(Audited, Base):
    """A file attached to a run: uploaded by the user, or its log and output.zip at the end."""

    __tablename__ = "run_files"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    file_name: Mapped[str] = mapped_column(String(1024))
    stored_path: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    is_locked: Mapped[bool] = mapped_column(Boolean, default=False)


class TrainingSearchHistory(Audited, Base):
    """A saved detailed search of trainings (検索履歴): one user's, in one tenant.

    ``detail_json`` holds the SearchDetailInputModel as ``jobs.search`` checked it.
    """

    __tablename__ = "training_search_histories"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(256))
    detail_json: Mapped[str] = mapped_column(Text, default="{}")
