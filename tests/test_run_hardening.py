"""What a run leaves and sees on the real platform (issue 10, holes 4 and 5): attacks from a training.

* a setuid-root binary left in ``/kqi/output`` gives nobody root on the host
  (the runs directory is mounted ``nosuid,nodev``);
* the host's ``/etc/shadow`` is not in the run's ``/etc``;
* the run's tokens (``KQI_TOKEN``, ``MODEL_REPOSITORY_TOKEN``) and the
  state directory's path are on no command line, the sandbox's own
  ``/proc/1/cmdline`` included.
"""

import os
import subprocess

import pytest
from conftest import submit, wait_for, wait_until

pytestmark = pytest.mark.platform

ATTACK = r"""
cp /usr/bin/id /kqi/output/suid-id && chmod 4755 /kqi/output/suid-id
cat /etc/shadow > /kqi/output/shadow 2>&1; ls /etc > /kqi/output/etc-listing
tr '\0' ' ' < /proc/1/cmdline > /kqi/output/init-cmdline
echo "$KQI_TOKEN" > /kqi/output/token
sleep 4
"""


def cmdlines() -> dict[int, bytes]:
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                found[int(pid)] = f.read()
        except OSError:
            pass
    return found


def exec_as_nobody(path: str) -> str:
    """Run ``path -u`` as uid 65534 from a descriptor (no directory permission needed): its euid."""
    fd = os.open(path, os.O_RDONLY)
    try:
        def drop():
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)

        return subprocess.run([f"/proc/self/fd/{fd}", "-u"], pass_fds=(fd,), preexec_fn=drop,
                              capture_output=True, text=True, timeout=10).stdout.strip()
    finally:
        os.close(fd)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting and changing uid need root")
def test_what_a_training_leaves_and_sees(platform, lab):
    run = submit(lab, ATTACK)
    output = os.path.join(platform.state_dir, "runs", f"training-{run['id']}", "output")
    written = [os.path.join(output, n) for n in ("suid-id", "token", "init-cmdline")]
    wait_until(lambda: all(os.path.exists(p) and os.path.getsize(p) for p in written), 60,
               "the training to write its files")
    token = open(written[1]).read().strip()
    assert token.startswith("kqirun_")
    leaks = [pid for pid, line in cmdlines().items() if token.encode() in line]  # while it runs
    assert not leaks, f"the run's token is on the command line of {leaks}"
    done = wait_for(lab["api"], run["id"])
    assert done["status"] == "Completed", lab["api"].get(f"/training/{run['id']}/log").text

    suid = os.path.join(output, "suid-id")
    assert os.stat(suid).st_mode & 0o4000 and os.stat(suid).st_uid == 0  # the run could set the bit…
    assert exec_as_nobody(suid) == "65534"  # …but on the host it gives nobody nothing
    assert exec_as_nobody("/usr/bin/id") == "65534"

    assert "root:" not in open(os.path.join(output, "shadow")).read()
    listing = open(os.path.join(output, "etc-listing")).read().split()
    assert "shadow" not in listing and "passwd" in listing
    init = open(os.path.join(output, "init-cmdline")).read()
    assert platform.state_dir not in init and "kqirun_" not in init
