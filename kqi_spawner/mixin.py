"""The notebook spawner's common part: KAMONOHASHI options, admission by the kqi service, progress, lifetimes.

``KqiSpawnerMixin`` goes in front of a JupyterHub spawner (``local.py``:
the embedded flavour; ``kubernetes.py``: KubeSpawner). ``start`` makes sure
the notebook record exists (created by ``POST /api/v2/notebook/run``, or from
the hub's own options form), sends the kqi service the server's command,
environment and port, then follows the service: the notebook waits in the
same queue as jobs (its position shown as hub progress messages), is
prepared (/kqi/* staged), and started — by the service's executor in the
local flavour, or by the flavour itself from the prepared spec. A notebook
the scheduler refuses, or one halted while it waits, fails the spawn with
the service's message. ``poll`` and ``stop`` ask the service, which also
stops the notebook at the end of its lifetime and tells the hub.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlencode

from jupyterhub.utils import random_port
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Bool, Float, Unicode
from traitlets.config import Configurable

from .form import options_form_html, options_from_form, render_options_form, render_rerun_form


class KqiServiceError(web.HTTPError):
    """The kqi service refused (its 4xx status) or could not be reached (503); ``str()`` is its message.

    The hub shows ``jupyterhub_message`` as the spawn's failure, on its spawn
    page and in its API's answer.
    """

    def __init__(self, message: str, status: int = 503):
        super().__init__(status, "%s", message)
        self.jupyterhub_message = message

    def __str__(self) -> str:
        return self.jupyterhub_message


class KqiSpawnerMixin(Configurable):
    """Start notebooks as the kqi service admits them (see the module docstring)."""

    kqi_api_url = Unicode(
        help="The kqi service's API as the hub reaches it, e.g. http://127.0.0.1:8003/services/kqi/api/v2."
    ).tag(config=True)
    kqi_api_token = Unicode(
        help="The kqi service's own hub API token (the service accepts the spawner's calls with it)."
    ).tag(config=True)
    kqi_wait_seconds = Float(10.0, help="Longest wait of one long-poll on the notebook's state.").tag(config=True)
    run_here = Bool(True, help="The kqi service's executor runs the notebook (the local flavour).")

    notebook_id = None
    _events: list
    _progress_changed: asyncio.Event | None = None

    # the kqi service --------------------------------------------------------------------
    async def kqi(self, method: str, path: str, body=None, timeout: float = 60):
        req = HTTPRequest(
            self.kqi_api_url.rstrip("/") + path, method=method,
            headers={"Authorization": f"token {self.kqi_api_token}", "Content-Type": "application/json"},
            body=json.dumps(body) if body is not None else (b"" if method == "POST" else None),
            request_timeout=timeout)
        try:
            resp = await AsyncHTTPClient().fetch(req, raise_error=False)
        except (HTTPClientError, OSError) as e:
            raise KqiServiceError(f"the kqi service cannot be reached: {e}") from e
        try:
            answer = json.loads(resp.body or b"null")
        except ValueError:
            answer = None
        if resp.code >= 400 or resp.code == 599:
            message = answer.get("message") if isinstance(answer, dict) else None
            raise KqiServiceError(message or f"the kqi service answered {resp.code}",
                                  resp.code if 400 <= resp.code < 500 else 503)
        return answer

    # state kept by the hub ----------------------------------------------------------------
    def get_state(self):
        state = super().get_state()
        if self.notebook_id is not None:
            state["kqi_notebook_id"] = self.notebook_id
        return state

    def load_state(self, state):
        super().load_state(state)
        self.notebook_id = state.get("kqi_notebook_id")

    def clear_state(self):
        super().clear_state()
        self.notebook_id = None

    # the options form (people who start servers from /hub/home) ---------------------------
    def _options_form_default(self):
        return kqi_options_form

    def options_from_form(self, formdata):
        return options_from_form(formdata)

    # progress ---------------------------------------------------------------------------
    def _say(self, percent: int, message: str) -> None:
        if not hasattr(self, "_events"):
            self._events = []
        if self._events and self._events[-1]["message"] == message:
            return
        self._events.append({"progress": percent, "message": message})
        self.log.info("notebook %s of %s: %s", self.notebook_id, self.user.name, message)
        if self._progress_changed is not None:
            self._progress_changed.set()

    async def progress(self):
        """The hub's spawn page shows these: queue position, preparing, starting."""
        sent = 0
        self._progress_changed = asyncio.Event()
        while True:
            events = getattr(self, "_events", [])
            while sent < len(events):
                yield events[sent]
                sent += 1
            if self._spawn_future is not None and self._spawn_future.done():
                return
            self._progress_changed.clear()
            try:
                await asyncio.wait_for(self._progress_changed.wait(), 1)
            except TimeoutError:
                pass

    # start / poll / stop ----------------------------------------------------------------
    async def start(self):
        self._events = []
        options = dict(self.user_options or {})
        notebook_id = options.pop("notebook_id", None)
        if notebook_id is None:  # a spawn from the hub's form: the service makes (or reruns) the record
            created = await self.kqi("POST", "/internal/notebooks",
                                     {"user": self.user.name, "serverName": self.name, "options": options})
            notebook_id = created["id"]
        self.notebook_id = int(notebook_id)
        if not self.port:
            self.port = random_port()
        cmd = self.cmd + self.get_args()
        await self.kqi("POST", f"/internal/notebooks/{self.notebook_id}/spawn",
                       {"user": self.user.name, "cmd": cmd, "env": self.get_env(), "port": self.port,
                        "runHere": self.run_here})
        state = await self.follow_until_started()
        return await self.start_prepared(state)

    async def follow_until_started(self) -> dict:
        """Wait while the notebook is queued and prepared; its state once it runs."""
        since = ""
        while True:
            state = await self.kqi("GET", f"/internal/notebooks/{self.notebook_id}"
                                          f"?wait={self.kqi_wait_seconds:g}&since={since}",
                                   timeout=self.kqi_wait_seconds + 30)
            since = f"{state['phase']}:{state['queuePosition']}"
            if state["phase"] == "queued":
                position = state["queuePosition"]
                self._say(10, f"Notebook {self.notebook_id} is waiting for resources"
                              + (f" (position {position} in the queue)" if position else ""))
            elif state["phase"] == "preparing":
                self._say(40, f"Resources on {state['node']}; cloning the model and staging /kqi/input")
            elif state["phase"] == "running":
                self._say(70, "The notebook's server is starting")
                return state
            else:
                raise KqiServiceError(f"Notebook {self.notebook_id} is {state['status']}"
                                      + (f": {state['message']}" if state.get("message") else ""), 409)

    async def start_prepared(self, state: dict):
        """The flavour's part once the service started (or prepared) the notebook: where it listens."""
        return (self.ip or "127.0.0.1", self.port)

    async def poll(self):
        if self.notebook_id is None:
            return 0
        try:
            state = await self.kqi("GET", f"/internal/notebooks/{self.notebook_id}")
        except KqiServiceError as e:
            if "not found" in str(e).lower():
                return 0
            return None  # the service is restarting: the notebook runs on under its supervisor
        return None if state["phase"] in ("queued", "preparing", "running") else 0

    async def stop(self, now=False):
        if self.notebook_id is None:
            return
        try:
            await self.kqi("POST", f"/internal/notebooks/{self.notebook_id}/stop", timeout=60)
        except KqiServiceError as e:
            self.log.warning("stopping notebook %s: %s", self.notebook_id, e)


async def kqi_options_form(spawner) -> str:
    """The hub's spawn form (``Spawner.options_form`` as a callable): pickers of the user's tenant by name.

    For a server whose notebook exists, a form that only says so: "start" of a stopped notebook server reruns
    it with its own last settings (the form sends no options; ``internal/notebooks`` reruns the server's
    notebook). The plain form when the service cannot be asked.
    """
    try:
        choices = await spawner.kqi("GET", "/internal/spawn-options?" + urlencode(
            {"user": spawner.user.name, "serverName": spawner.name or ""}))
    except KqiServiceError as e:
        spawner.log.warning("The spawn form's choices could not be read: %s", e)
        return options_form_html
    if choices.get("rerun"):
        return render_rerun_form(choices["rerun"])
    return render_options_form(choices)
