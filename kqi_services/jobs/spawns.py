"""The job engine's side of notebooks: what their spawners asked for, readiness, and telling the hub.

``JobEngine`` mixes this in. A notebook's spawner (in the hub) asks for a
start with the server's command (``request_spawn``); once the executor runs
the server, the notebook is Running only when the hub says the server is
ready, i.e. its proxy routes to it (``mark_ready_when_served``); when it
ends here (halt, lifetime, crash) the hub is told (``tell_hub_stopped``).
"""

from __future__ import annotations

import logging
from typing import Any

from ..executor.base import RunState
from ..orm import Run, User, utcnow
from . import status as st
from .interactive import SpawnRequest

log = logging.getLogger("kqi.jobs")


class NotebookSpawns:
    """Mixed into ``JobEngine``: its ``_spawns`` and ``hub_api``, and what it does with them for notebooks."""

    _spawns: dict[int, SpawnRequest]
    hub_api: Any  # hub.api.HubAPI, or a fake in tests

    def kick(self) -> None:
        raise NotImplementedError  # JobEngine's

    def log_tail(self, run: Run, lines: int = 3) -> str:
        raise NotImplementedError  # JobEngine's

    def request_spawn(self, run_id: int, request: SpawnRequest) -> None:
        """The hub's spawner asks to start a queued notebook with its server's command: it may be admitted now."""
        self._spawns[run_id] = request
        self.kick()

    def spawn_of(self, run_id: int) -> SpawnRequest | None:
        """What the notebook's spawner asked for (its spec once started), or None."""
        return self._spawns.get(run_id)

    def stopping_by_hub(self, run_id: int) -> None:
        """The hub stops the notebook's server itself: it need not be told when the notebook ends."""
        spawn = self._spawns.get(run_id)
        if spawn is not None:
            spawn.stopping_by_hub = True

    async def mark_ready_when_served(self, db, run: Run) -> None:
        """A starting notebook is Running once the hub says its server is ready (the proxy routes to it)."""
        user = db.get(User, run.user_id)
        try:
            model = await self.hub_api.get_user(user.name) if user is not None else None
        except Exception as e:  # noqa: BLE001 - asked again at the next pass
            log.debug("could not ask the hub about notebook %s: %s", run.id, e)
            return
        server = ((model or {}).get("servers") or {}).get(run.server_name or "")
        if server and server.get("ready"):
            db.refresh(run)
            if run.phase == st.STARTING and run.end_requested is None:
                st.apply(run, "ready", utcnow())
                db.commit()

    def notebook_end_note(self, run: Run, final: str, state: RunState) -> str | None:
        """Why a notebook ended: its lifetime, or its server's exit and the last lines of its log."""
        if run.end_requested:
            return run.condition_note
        if final == st.FAILED:
            return f"The notebook's server exited with code {state.exit_code}: {self.log_tail(run)}"
        return None

    async def tell_hub_stopped(self, db, run: Run) -> None:
        """A notebook ended here (halt, lifetime, crash): the hub stops its server record too."""
        user = db.get(User, run.user_id)
        if user is None or not run.server_name:
            return
        try:
            await self.hub_api.stop_server(user.name, run.server_name)
        except Exception as e:  # noqa: BLE001 - the hub's own poll will notice later
            log.warning("could not tell the hub that notebook %s stopped: %s", run.id, e)
