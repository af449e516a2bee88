"""First-start contents of the kqi database: roles, endpoints, this node, a tenant, the admin.

Runs at every start and only adds what is missing, so a second start reuses
the state as it is.
"""

from __future__ import annotations

import re
import secrets

from sqlalchemy import select, text

from kqi_services.accounts.passwords import hash_password
from kqi_services.accounts.secretbox import SecretBox
from kqi_services.accounts.users import ADMIN_ROLE_ID, LOCAL_AUTH, MANAGER_ROLE_ID, USER_ROLE_ID
from kqi_services.jobs.nodes import NodeCapacity

from .orm import (
    DataType,
    GitEndpoint,
    Membership,
    Node,
    RegistryEndpoint,
    Role,
    StorageEndpoint,
    Tenant,
    TenantGit,
    TenantRegistry,
    User,
)

DEFAULT_TENANT = "default"
DATA_TYPES = [(1, "training"), (2, "validation"), (3, "testing")]
ROLES = [
    (ADMIN_ROLE_ID, "admin", "System Admin", True, 1),
    (USER_ROLE_ID, "user", "Researcher", False, 100),
    (MANAGER_ROLE_ID, "manager", "Tenant Manager", False, 200),
]


def seed_defaults(db, box: SecretBox, node: NodeCapacity, storage_root: str) -> None:
    """Add the built-in roles, endpoints 1, the node and the default tenant if missing."""
    for role_id, name, display, system, order in ROLES:
        if db.get(Role, role_id) is None:
            db.add(Role(id=role_id, name=name, display_name=display, is_system_role=system,
                        sort_order=order, is_not_editable=True, created_by="system", modified_by="system"))
    if db.get(GitEndpoint, 1) is None:
        db.add(GitEndpoint(id=1, name="GitHub", service_type=2, repository_url="https://github.com",
                           api_url="https://api.github.com", created_by="system", modified_by="system"))
    if db.get(RegistryEndpoint, 1) is None:
        db.add(RegistryEndpoint(id=1, name="docker-hub", host="registry-1.docker.io", port_no=443,
                                service_type=2, project_name="", api_url="https://registry.hub.docker.com/",
                                registry_url="https://registry-1.docker.io/", created_by="system",
                                modified_by="system"))
    if db.get(StorageEndpoint, 1) is None:
        db.add(StorageEndpoint(id=1, name="local", kind="local", server_url="file://" + storage_root,
                               access_key="", secret_key_encrypted=box.encrypt(""), created_by="system",
                               modified_by="system"))
    for type_id, name in DATA_TYPES:
        if db.get(DataType, type_id) is None:
            db.add(DataType(id=type_id, name=name, sort_order=type_id))
    db.flush()
    if db.scalar(select(Node).limit(1)) is None:
        db.add(Node(name=_node_name(node.name), memo="this machine", partition="default", access_level=2,
                    cpu=node.cpu, memory_gb=node.memory_gb, gpu=len(node.gpus),
                    created_by="system", modified_by="system"))
    if Tenant.find_by_name(db, DEFAULT_TENANT) is None:
        db.add(Tenant(name=DEFAULT_TENANT, display_name="Default tenant", storage_id=1, default_git_id=1,
                      default_registry_id=1, gits=[TenantGit(git_id=1)],
                      registries=[TenantRegistry(registry_id=1)], created_by="system", modified_by="system"))
    db.flush()
    _advance_sequences(db, ["roles", "git_endpoints", "registry_endpoints", "storage_endpoints", "data_types"])


def _advance_sequences(db, tables) -> None:
    """Rows seeded with explicit ids leave PostgreSQL's sequences behind: move them on."""
    if db.get_bind().dialect.name != "postgresql":
        return
    for table in tables:
        db.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"))


def ensure_admin(db, name: str, password: str | None) -> str | None:
    """Create the first system admin if missing; return a generated password to show once."""
    if User.find_by_name(db, name) is not None:
        return None
    generated = None
    if not password:
        generated = password = secrets.token_urlsafe(12)
    tenant = Tenant.find_by_name(db, DEFAULT_TENANT)
    admin = User(name=name.lower(), password_hash=hash_password(password), service_type=LOCAL_AUTH,
                 is_admin=True, created_by="system", modified_by="system")
    if tenant is not None:
        m = Membership(tenant_id=tenant.id, is_default=True)
        m.roles = [USER_ROLE_ID, MANAGER_ROLE_ID]
        admin.memberships.append(m)
    db.add(admin)
    db.flush()
    return generated


def _node_name(hostname: str) -> str:
    name = re.sub(r"[^-_.a-zA-Z0-9]", "-", hostname).strip("-_.")
    return name or "localhost"
