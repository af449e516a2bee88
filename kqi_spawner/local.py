"""The embedded notebook spawner: the kqi service's own executor runs the notebook's server.

The server runs in the same sandbox as jobs (bubblewrap or unshare, cgroup
limits, real ``/kqi/*`` paths, the host network so the proxy reaches its
port), under a supervisor of its own, so it survives a restart of the kqi
service and of the hub.
"""

from __future__ import annotations

from jupyterhub.spawner import Spawner

from .mixin import KqiSpawnerMixin


class KqiLocalSpawner(KqiSpawnerMixin, Spawner):
    """Notebooks on this host, admitted and run by the kqi service."""

    run_here = True
