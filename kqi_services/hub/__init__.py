"""The hub side: what runs in (or for) the JupyterHub process, and the service's client of the hub.

- ``authenticator``: logins checked against the kqi database;
- ``mirror``: kqi users and tenants mirrored as hub users and groups;
- ``api``: the service's async client of the hub's REST API;
- ``identities``: the service's cache of the hub's "whose token is this?" answers;
- ``forwarding``: which client a request through the hub's proxy came from;
- ``lifeline``: the service lives and dies with its hub;
- ``settings``: platform settings shared by the launcher, the hub config and the service;
- ``launcher``: the ``kqi-hub`` command.
"""
