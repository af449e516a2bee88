"""An image pull's progress, layer by layer, as the run's details and events show it.

The Docker Engine API streams a pull as events (``{"id": layer, "status":
"Downloading", "progressDetail": {"current": n, "total": m}}``…).
``PullProgress`` folds them into one state per layer, which the container
executor writes to the run's directory while it pulls (``pull.json``) so the
service shows "Pulling image X: 2 of 5 layers done, 12.3 of 40.0 MB" as the
run's condition, in its events and in the panels, until the pull ends.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

#: layer states after which a layer has nothing left to fetch
LAYER_DONE = ("Pull complete", "Already exists", "Download complete", "Layer already exists")
MB = 1_000_000


@dataclass
class PullProgress:
    """The state of one pull: its image, each layer's last status and bytes, and whether it ended."""

    image: str
    layers: dict[str, dict] = field(default_factory=dict)
    done: bool = False
    error: str | None = None

    def update(self, event: dict) -> bool:
        """Take one event of the engine's stream; whether a layer's state changed (not only its bytes)."""
        layer, status = event.get("id", ""), event.get("status", "")
        if not layer or not status or status.startswith(("Pulling from", "Digest:", "Status:")):
            return False
        detail = event.get("progressDetail") or {}
        before = self.layers.get(layer, {})
        state = {"status": status, "current": detail.get("current", before.get("current", 0)),
                 "total": detail.get("total", before.get("total", 0))}
        if status in LAYER_DONE and state["total"]:
            state["current"] = state["total"]
        self.layers[layer] = state
        return before.get("status") != status

    @property
    def layers_done(self) -> int:
        return sum(1 for s in self.layers.values() if s["status"] in LAYER_DONE)

    def message(self) -> str:
        """One line for people: what is pulled and how far it got."""
        if self.error:
            return f"Pulling image {self.image} failed: {self.error}"
        if self.done:
            return f"Pulled image {self.image}"
        text = f"Pulling image {self.image}"
        if self.layers:
            text += f": {self.layers_done} of {len(self.layers)} layers done"
            total = sum(s["total"] for s in self.layers.values())
            if total:
                current = sum(min(s["current"], s["total"]) for s in self.layers.values())
                text += f", {current / MB:.1f} of {total / MB:.1f} MB"
        return text

    def to_dict(self) -> dict:
        return {"image": self.image, "layers": self.layers, "done": self.done, "error": self.error,
                "layersDone": self.layers_done, "layerCount": len(self.layers), "message": self.message()}


class PullRecorder:
    """Writes a pull's progress to a file at most every ``interval`` seconds (and at every layer's new state)."""

    def __init__(self, path: str, image: str, interval: float = 0.5):
        self.path = path
        self.progress = PullProgress(image)
        self.interval = interval
        self._written = 0.0
        self.write()

    def take(self, event: dict) -> bool:
        changed = self.progress.update(event)
        if changed or time.monotonic() - self._written >= self.interval:
            self.write()
        return changed

    def end(self, error: str | None = None) -> None:
        self.progress.done, self.progress.error = error is None, error
        self.write()

    def write(self) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.progress.to_dict(), f)
        os.replace(tmp, self.path)
        self._written = time.monotonic()


def read_progress(path: str) -> dict | None:
    """What a ``PullRecorder`` wrote, or None."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
