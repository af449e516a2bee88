"""The notebook spawner of KQI Hub: one mixin (``mixin.py``) over a local and a Kubernetes flavour.

- ``kqi_spawner.local.KqiLocalSpawner`` — embedded: the kqi service's executor runs the server;
- ``kqi_spawner.kubernetes.KqiKubeSpawner`` — KubeSpawner: a pod built from the prepared spec
  (``kube.py`` holds the pure manifest builders).
"""
