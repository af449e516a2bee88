"""Tornado handlers of the kqi REST API (KAMONOHASHI v2), one module per resource.

Each module ends in ``default_handlers``; this list concatenates them, as
``jupyterhub/apihandlers/__init__.py`` does. Patterns are relative to the
service prefix.
"""

from . import (
    account,
    browser,
    cluster,
    data,
    datasets,
    endpoints,
    gitbrowse,
    lineage,
    notebooks,
    preprocessings,
    registries,
    resources,
    roles,
    runs,
    shell,
    spawner,
    storage,
    tenants,
    tensorboard,
    training_search,
    upload,
    users,
    version,
    wheels,
)

default_handlers = []
for _module in (account, tenants, users, roles, endpoints, cluster, data, datasets, upload, storage, training_search, runs, preprocessings, lineage, registries, gitbrowse,
                notebooks, resources,
                spawner, shell, tensorboard, version, wheels, browser):
    default_handlers.extend(_module.default_handlers)
