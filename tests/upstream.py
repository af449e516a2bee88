"""Running the upstream kamonohashi-cli 4.0.2, unchanged, as a user would (shared by the upstream tests).

Each call runs `.venv-upstream/bin/kqi` as a subprocess with its own HOME (so its
`~/.kqi/config.json` is the test's) and no stdin.
"""

from __future__ import annotations

import os
import re
import subprocess

from conftest import REPO, require_or_skip

KQI = os.path.join(REPO, ".venv-upstream", "bin", "kqi")


def require_upstream_cli() -> None:
    """Skip (or fail under KQI_TEST_REQUIRE_SERVERS=1) when the upstream venv is not installed."""
    if not os.access(KQI, os.X_OK):
        require_or_skip("upstream kamonohashi-cli venv missing: make .venv-upstream/.installed")


class Cli:
    """One user's upstream `kqi`: a HOME of its own, hence a config.json of its own."""

    def __init__(self, home: str, server: str):
        self.home = home
        self.server = server

    def __call__(self, *args, ok: bool = True, cwd: str | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KQI_", "JUPYTERHUB_"))}
        env.update(HOME=self.home, NO_PROXY="*", no_proxy="*")
        for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            env.pop(key, None)
        r = subprocess.run([KQI, *map(str, args)], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=timeout, cwd=cwd)
        if ok:
            assert r.returncode == 0, f"kqi {' '.join(map(str, args))} -> {r.returncode}\n{r.stdout}{r.stderr}"
            assert "[ERROR]" not in r.stdout, r.stdout
        return r

    def login(self, user: str, password: str) -> subprocess.CompletedProcess:
        return self("account", "login", "-s", self.server, "-u", user, "-p", password)


def field(out: str, key: str) -> str:
    """The value printed after `key:` at the start of a line (pp_dict / account output)."""
    m = re.search(rf"^{re.escape(key)}:[ ]?(.*)$", out, re.M)
    assert m, f"no {key!r} in:\n{out}"
    return m.group(1)


def cli_login(platform, home, tenant: dict, user: dict):
    """The upstream CLI logged in as ``user`` in its own HOME; (cli, the API with the CLI's token)."""
    import json

    home.mkdir(exist_ok=True)
    cli = Cli(str(home), platform.url + "/services/kqi")
    r = cli.login(user["name"], user["password"])
    assert field(r.stdout, "tenant") == tenant["name"]
    with open(home / ".kqi" / "config.json") as f:
        return cli, platform.api(json.load(f)["token"])
