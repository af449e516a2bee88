"""The upstream client's configuration file, ``~/.kqi/config.json`` (``server``, ``token``, …).

Read and written exactly as kamonohashi-cli 4.0.2 does (a JSON object, keys
with ``None`` values dropped, indented by 4), so both clients share one login.
"""

from __future__ import annotations

import json
import os


def config_path() -> str:
    """Where the file lives (``~`` expanded at call time, so a changed HOME is honoured)."""
    return os.path.expanduser(os.path.join("~", ".kqi", "config.json"))


def read_config() -> dict:
    """The file's settings, or ``{}`` when there is none (or it is not a JSON object)."""
    try:
        with open(config_path(), encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def update_config(**settings) -> dict:
    """Merge ``settings`` into the file (``None`` removes a key); the settings now stored."""
    config = read_config()
    config.update(settings)
    config = {key: value for key, value in config.items() if value is not None}
    path = config_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=4)
    return config
