"""Attacks on the platform's process tree: a hub killed with SIGKILL must not leave its kqi service behind.

Before the lifeline, the old service kept its port and every service the
restarted hub started failed with "Address already in use".
"""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import ADMIN_PASSWORD, _process_tree, alive, wait_until

from kqi_services.hub import lifeline


def service_pid(platform) -> int:
    """The kqi service under the platform's hub (found by its command line)."""
    for pid in _process_tree(platform.process.pid):
        if lifeline.command_line(pid).rstrip().endswith("-m kqi_services"):
            return pid
    raise AssertionError("no kqi service under the hub")


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def kill_hub(platform) -> None:
    os.kill(platform.process.pid, signal.SIGKILL)
    platform.process.wait(10)


def assert_serves_again(start_platform, state, port):
    again = start_platform(state, port=port)
    admin = again.api().login("admin", ADMIN_PASSWORD)
    r = admin.get("/admin/tenants")
    assert r.status_code == 200, r.text
    assert "default" in [t["name"] for t in r.json()]
    return again


@pytest.mark.platform
def test_the_service_ends_with_a_killed_hub_and_the_platform_starts_again(start_platform, tmp_path):
    state = str(tmp_path / "state")
    first = start_platform(state)
    port = int(first.url.rsplit(":", 1)[1])
    service = service_pid(first)
    kill_hub(first)
    started = time.monotonic()
    wait_until(lambda: not alive(service) and port_free(port + 3), 10, "the old kqi service to end")
    assert time.monotonic() - started < 5
    assert_serves_again(start_platform, state, port)


@pytest.mark.platform
def test_a_new_hub_stops_a_service_that_could_not_end(start_platform, tmp_path):
    """A stale service that cannot act on its own (here: SIGSTOPped) is stopped by the next kqi-hub."""
    state = str(tmp_path / "state")
    first = start_platform(state)
    port = int(first.url.rsplit(":", 1)[1])
    service = service_pid(first)
    os.kill(service, signal.SIGSTOP)
    kill_hub(first)
    time.sleep(1.5)
    assert alive(service) and not port_free(port + 3)
    again = assert_serves_again(start_platform, state, port)
    assert not alive(service)
    assert f"Stopped the kqi service (pid {service})" in again.log()


def test_the_lifeline_lets_a_service_started_by_hand_be(tmp_path):
    """Without a hub pid in its environment the service is not tied to anything (and records nothing)."""
    env = {k: v for k, v in os.environ.items() if k != lifeline.HUB_PID_ENV}
    code = "from kqi_services.hub import lifeline; import sys; print(lifeline.tie_to_hub(sys.argv[1]))"
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "None" and not os.path.exists(lifeline.pid_file(str(tmp_path)))


def test_take_over_leaves_a_live_hubs_service_alone(tmp_path):
    """Starting a second kqi-hub on a state dir in use must not kill the running platform's service."""
    hub = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "jupyterhub"])
    service = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "-m", "kqi_services"])
    try:
        with open(lifeline.pid_file(str(tmp_path)), "w") as f:
            f.write(f'{{"pid": {service.pid}, "hub_pid": {hub.pid}}}')
        assert lifeline.take_over(str(tmp_path)) is None and service.poll() is None
        hub.kill()
        hub.wait()
        assert lifeline.take_over(str(tmp_path)) == service.pid
        assert service.wait(10) == -signal.SIGTERM
        assert not os.path.exists(lifeline.pid_file(str(tmp_path)))
    finally:
        for p in (hub, service):
            p.kill()
            p.wait()
