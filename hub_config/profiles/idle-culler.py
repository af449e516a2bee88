"""Profile: stop notebooks idle for a while (KQI_HUB_CONFIG=hub_config/profiles/idle-culler.py).

Needs `pip install jupyterhub-idle-culler` in the platform's venv. The culler
stops a server through the hub's API; our spawner then halts its notebook
(status Killed), its resources go back to the queue and /kqi/output stays for
a rerun. KQI_IDLE_TIMEOUT: idle seconds before a stop (default 3600).
"""

import os
import sys

c = get_config()  # noqa: F821
c.JupyterHub.services.append({
    "name": "idle-culler",
    "command": [sys.executable, "-m", "jupyterhub_idle_culler",
                f"--timeout={int(os.environ.get('KQI_IDLE_TIMEOUT', '3600'))}"],
})
c.JupyterHub.load_roles.append({
    "name": "idle-culler",
    "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    "services": ["idle-culler"],
})
