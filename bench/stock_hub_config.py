"""Stock JupyterHub 6.1.1 for bench/notebook_bench.py: SimpleLocalProcessSpawner, named servers, the project's proxy.

Everything that differs between runs comes from the environment the bench
sets: ``STOCK_HUB_DIR`` (db, cookie secret, proxy pid, homes),
``STOCK_HUB_PORT`` (the public port; +1 the hub, +2 the proxy's API) and
``STOCK_HUB_TOKEN`` (the API token of a ``bench`` service allowed to manage
and reach every server). Run: ``.venv/bin/jupyterhub -f bench/stock_hub_config.py``.
"""

import os
import sys

c = get_config()  # noqa: F821 - provided by JupyterHub

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
state = os.environ["STOCK_HUB_DIR"]
port = int(os.environ["STOCK_HUB_PORT"])

c.JupyterHub.bind_url = f"http://127.0.0.1:{port}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{port + 1}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{port + 2}"
c.ConfigurableHTTPProxy.command = [os.path.join(REPO, "node_modules", ".bin", "configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = os.path.join(state, "proxy.pid")
c.JupyterHub.pid_file = os.path.join(state, "hub.pid")
c.JupyterHub.db_url = "sqlite:///" + os.path.join(state, "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(state, "cookie_secret")
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True

c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
c.JupyterHub.allow_named_servers = True
c.SimpleLocalProcessSpawner.home_dir_template = os.path.join(state, "home", "{username}")
c.Spawner.cmd = [os.path.join(os.path.dirname(sys.executable), "jupyterhub-singleuser")]
c.Spawner.args = ["--allow-root"] if os.geteuid() == 0 else []
c.Spawner.default_url = "/lab"
c.Spawner.http_timeout = 120

c.JupyterHub.services = [{"name": "bench", "api_token": os.environ["STOCK_HUB_TOKEN"]}]
c.JupyterHub.load_roles = [{
    "name": "bench",
    "scopes": ["admin:users", "admin:servers", "access:servers", "read:users"],
    "services": ["bench"],
}]
