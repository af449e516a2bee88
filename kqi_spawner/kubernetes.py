"""The Kubernetes notebook spawner: KubeSpawner runs the pod the kqi service admitted and prepared.

The kqi service admits the notebook through its scheduler and stages its
``/kqi/*`` directories on the shared state volume, then hands back the run
spec; ``apply_spec`` turns it into KubeSpawner traits (requests = limits,
``nvidia.com/gpu``, a node selector per partition, sub-paths of the state
volume for ``/kqi/*``) with the pure builders of ``kube.py``, and KubeSpawner
creates the pod. Built and unit-tested here; a real cluster runs it later.
"""

from __future__ import annotations

from kubespawner import KubeSpawner
from traitlets import Unicode

from kqi_services.executor.spec import RunSpec

from .kube import PARTITION_LABEL, kube_spawner_overrides
from .mixin import KqiSpawnerMixin


class KqiKubeSpawner(KqiSpawnerMixin, KubeSpawner):
    """Notebooks as pods, admitted and prepared by the kqi service."""

    run_here = False

    kqi_state_volume = Unicode(
        "kqi-state", help="The PersistentVolumeClaim holding the kqi state directory (runs' /kqi/* sub-paths)."
    ).tag(config=True)
    kqi_state_root = Unicode(
        help="The kqi state directory as the kqi service sees it (the root of the claim's sub-paths)."
    ).tag(config=True)
    kqi_partition_label = Unicode(PARTITION_LABEL, help="The node label that names a node's partition.").tag(
        config=True)

    def apply_spec(self, spec: RunSpec, partition: str | None) -> dict:
        """Set this spawner's pod traits from the prepared spec; returns what was set."""
        overrides = kube_spawner_overrides(spec, state_volume=self.kqi_state_volume, state_root=self.kqi_state_root,
                                           partition=partition, node_selector_key=self.kqi_partition_label)
        for name, value in overrides.items():
            setattr(self, name, value)
        self.cmd = ["/bin/sh", "-c", spec.command]
        self.args = []
        return overrides

    async def start_prepared(self, state: dict):
        self.apply_spec(RunSpec.from_dict(state["spec"]), state.get("partition"))
        return await KubeSpawner.start(self)

    async def poll(self):
        return await KubeSpawner.poll(self)

    async def stop(self, now=False):
        await KubeSpawner.stop(self, now=now)
        await KqiSpawnerMixin.stop(self, now=now)
