"""The executor's pure parts: run spec rules, sandbox command lines, cgroup layouts and limits."""

import pytest

from kqi_services.executor.cgroups import (
    Hierarchy,
    choose_hierarchies,
    parse_hierarchies,
    v1_limit_writes,
    v2_limit_writes,
)
from kqi_services.executor.sandbox import (
    HostLayout,
    SandboxUnavailable,
    bwrap_argv,
    sandbox_command,
    unshare_argv,
    unshare_prologue,
)
from kqi_services.executor.spec import Mount, RunSpec, SpecError

MERGED_USR = HostLayout(top_level={"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64"},
                        bwrap="/usr/bin/bwrap", unshare="/usr/bin/unshare", setpriv="/usr/bin/setpriv",
                        etc=(("passwd", ""), ("os-release", "../usr/lib/os-release"), ("ssl/certs", "")))


def training_spec(**overrides) -> RunSpec:
    fields = dict(
        run_id="training-12", run_dir="/var/lib/kqi/runs/training-12", command="python train.py --epochs 2",
        env={"TRAINING_ID": "12", "KQI_SERVER": "http://127.0.0.1:8000/services/kqi"},
        mounts=[Mount("/srv/out/12", "/kqi/output"), Mount("/srv/git/12", "/kqi/git"),
                Mount("/srv/stage/12/input", "/kqi/input", read_only=True),
                Mount("/srv/out/7", "/kqi/parent")],
        cpu=2, memory_bytes=4 << 30, gpus=[1],
    )
    fields.update(overrides)
    return RunSpec(**fields).validate()


# RunSpec ---------------------------------------------------------------------------------------


def test_spec_round_trips_through_json():
    import json

    from kqi_services.executor.netns import PortForward

    spec = training_spec(network="outside", image="kqi/pytorch:2", pids_max=512, halt_grace_s=2.5,
                         forwards=[PortForward("out", 8000, "127.0.0.1:8000"), PortForward("in", 6006, "unix:/r/s")])
    again = RunSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    assert again.mounts[2] == Mount("/srv/stage/12/input", "/kqi/input", True)
    assert again.forwards[1].host == "unix:/r/s" and again.prepared_network
    assert again.log_file == "/var/lib/kqi/runs/training-12/output.log"
    assert training_spec(log_path="/var/log/kqi/t12.log").log_file == "/var/log/kqi/t12.log"


def test_spec_defaults_add_only_path_and_home():
    spec = RunSpec("preprocessing-3", "true")
    # a network namespace of its own, loopback only, unless forwards are given
    assert spec.workdir == "/kqi/git" and spec.network == "private" and not spec.prepared_network
    assert spec.halt_grace_s == 5.0
    # a spec written before `network` existed (share_network true) still reads as the host's network
    assert RunSpec.from_dict({**spec.to_dict(), "network": "private", "share_network": True}).network == "host"
    assert spec.sandbox_env() == {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                  "HOME": "/tmp"}
    assert RunSpec("x", "true", env={"PATH": "/opt/bin", "HOME": "/kqi/output"}).sandbox_env() == {
        "PATH": "/opt/bin", "HOME": "/kqi/output"}


@pytest.mark.parametrize("overrides, message", [
    ({"run_id": "Training_12"}, "run_id"),
    ({"run_id": "../etc"}, "run_id"),
    ({"run_id": "-x"}, "run_id"),
    ({"command": "  "}, "command"),
    ({"workdir": "kqi/git"}, "absolute"),
    ({"workdir": "/usr/local"}, "system"),
    ({"env": {"BAD-NAME": "1"}}, "variable name"),
    ({"env": {"X": 1}}, "string"),
    ({"mounts": [Mount("/srv/a", "/kqi/../etc")]}, "'..'"),
    ({"mounts": [Mount("srv/a", "/kqi/output")]}, "absolute"),
    ({"mounts": [Mount("/srv/a", "/etc/ssl")]}, "system"),
    ({"mounts": [Mount("/srv/a", "/")]}, "system"),
    ({"mounts": [Mount("/srv/a", "/kqi/output"), Mount("/srv/b", "/kqi/output")]}, "two mounts"),
    ({"mounts": [Mount("/srv/a", "/kqi/out\nput")]}, "control"),
    ({"memory_bytes": -1}, "memory_bytes"),
    ({"cpu": True}, "cpu"),
    ({"gpus": [0, 0]}, "twice"),
    ({"gpus": ["0"]}, "gpus"),
    ({"network": "bridge"}, "network must be"),
    ({"forwards": [{"direction": "sideways", "port": 80, "host": "127.0.0.1:80"}]}, "direction"),
    ({"forwards": [{"direction": "out", "port": 0, "host": "127.0.0.1:80"}]}, "port"),
    ({"forwards": [{"direction": "in", "port": 80, "host": "unix:relative"}]}, "absolute"),
    ({"forwards": [{"direction": "in", "port": 80, "host": "nohostport"}]}, "HOST:PORT"),
])
def test_spec_refuses(overrides, message):
    with pytest.raises(SpecError, match=message):
        training_spec(**overrides)


def test_spec_from_dict_refuses_unknown_fields_and_bad_mounts():
    data = training_spec().to_dict()
    with pytest.raises(SpecError, match="unknown run spec fields: privileged"):
        RunSpec.from_dict({**data, "privileged": True})
    with pytest.raises(SpecError):
        RunSpec.from_dict({**data, "mounts": [{"host_path": "/a", "target": "/kqi/x", "mode": "rw"}]})
    with pytest.raises(SpecError):
        RunSpec.from_dict([])


def test_input_and_parent_are_read_only_whatever_the_mount_says():
    spec = training_spec()
    assert [m.effective_read_only for m in spec.mounts] == [False, False, True, True]
    assert Mount("/a", "/kqi/parent/7", False).effective_read_only
    assert not Mount("/a", "/kqi/inputs", False).effective_read_only


# bubblewrap ---------------------------------------------------------------------------------------


def test_bwrap_argv_golden():
    layout = HostLayout(**{**MERGED_USR.__dict__, "dev_nodes": frozenset(
        {"nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset"})})
    assert bwrap_argv(training_spec(), layout) == [
        "/usr/bin/bwrap", "--die-with-parent", "--new-session", "--unshare-all",
        "--hostname", "training-12", "--cap-drop", "ALL",
        "--tmpfs", "/", "--ro-bind", "/usr", "/usr",
        "--tmpfs", "/etc", "--ro-bind", "/etc/passwd", "/etc/passwd",
        "--symlink", "../usr/lib/os-release", "/etc/os-release", "--ro-bind", "/etc/ssl/certs", "/etc/ssl/certs",
        "--remount-ro", "/etc",
        "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin", "--symlink", "usr/lib", "/lib",
        "--symlink", "usr/lib64", "/lib64",
        "--dev", "/dev",
        "--dev-bind", "/dev/nvidiactl", "/dev/nvidiactl", "--dev-bind", "/dev/nvidia-uvm", "/dev/nvidia-uvm",
        "--dev-bind", "/dev/nvidia-uvm-tools", "/dev/nvidia-uvm-tools", "--dev-bind", "/dev/nvidia1", "/dev/nvidia1",
        "--proc", "/proc", "--tmpfs", "/tmp", "--ro-bind", "/sys", "/sys",
        "--bind", "/srv/git/12", "/kqi/git", "--ro-bind", "/srv/stage/12/input", "/kqi/input",
        "--bind", "/srv/out/12", "/kqi/output", "--ro-bind", "/srv/out/7", "/kqi/parent",
        "--chdir", "/kqi/git", "--clearenv",
        "--setenv", "HOME", "/tmp", "--setenv", "KQI_SERVER", "http://127.0.0.1:8000/services/kqi",
        "--setenv", "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--setenv", "TRAINING_ID", "12",
        "--", "/bin/sh", "-c", "python train.py --epochs 2",
    ]


def test_bwrap_argv_prepared_network_real_lib64_extra_paths_and_workdir_without_mount():
    from kqi_services.executor.netns import PortForward

    layout = HostLayout(top_level={"bin": "usr/bin", "lib": "usr/lib", "lib64": ""}, bwrap="")
    spec = RunSpec("inference-4", "echo hi", mounts=[Mount("/d/p/2", "/kqi/parent/2"), Mount("/d/p", "/kqi/parent")],
                   forwards=[PortForward("out", 8000, "127.0.0.1:8000")], env={"A": "b c"}).validate()
    assert bwrap_argv(spec, layout, extra_ro_paths=("/opt/conda",)) == [
        "bwrap", "--die-with-parent", "--new-session", "--unshare-all", "--share-net",
        "--hostname", "inference-4", "--cap-drop", "ALL",
        "--tmpfs", "/", "--ro-bind", "/usr", "/usr", "--tmpfs", "/etc", "--remount-ro", "/etc",
        "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--ro-bind", "/lib64", "/lib64",
        "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
        "--ro-bind", "/opt/conda", "/opt/conda",
        "--ro-bind", "/d/p", "/kqi/parent", "--ro-bind", "/d/p/2", "/kqi/parent/2",
        "--dir", "/kqi/git", "--chdir", "/kqi/git", "--clearenv",
        "--setenv", "A", "b c", "--setenv", "HOME", "/tmp",
        "--setenv", "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "--", "/bin/sh", "-c", "echo hi",
    ]


def test_bwrap_invocation_keeps_options_and_variables_off_the_command_line():
    from kqi_services.executor.sandbox import bwrap_invocation

    argv = bwrap_argv(training_spec(env={"KQI_TOKEN": "kqirun_secret"}), MERGED_USR)
    short, options = bwrap_invocation(argv, 7)
    assert short == ["/usr/bin/bwrap", "--args", "7", "/bin/sh", "-c", "python train.py --epochs 2"]
    assert options.split(b"\0")[:-1] == [a.encode() for a in argv[1:argv.index("--")]]
    assert b"kqirun_secret" in options and b"/srv/out/12" in options


def test_only_world_readable_etc_entries_are_shown(tmp_path):
    from kqi_services.executor.sandbox import visible_etc_entries

    for name, mode in (("passwd", 0o644), ("shadow", 0o640), ("group", 0o600), ("hosts", 0o644)):
        (tmp_path / name).write_text("x")
        (tmp_path / name).chmod(mode)
    (tmp_path / "ssl" / "private").mkdir(parents=True)
    (tmp_path / "ssl" / "certs").mkdir()
    (tmp_path / "os-release").symlink_to("../usr/lib/os-release")
    assert visible_etc_entries(str(tmp_path)) == (
        ("passwd", ""), ("hosts", ""), ("ssl/certs", ""), ("os-release", "../usr/lib/os-release"))


def test_sandbox_command_prefers_bwrap_and_notes_missing_gpu_nodes():
    kind, argv, notes = sandbox_command(training_spec(), MERGED_USR, "/r")
    assert kind == "bwrap" and argv[0] == "/usr/bin/bwrap"
    assert notes == ["GPU 1 was assigned but /dev/nvidia1 does not exist on this host",
                     "GPUs are assigned but CUDA_VISIBLE_DEVICES is not set"]
    assert "/dev/nvidia1" not in argv
    spec = training_spec(env={"CUDA_VISIBLE_DEVICES": "0"})
    assert sandbox_command(spec, HostLayout(**{**MERGED_USR.__dict__, "dev_nodes": frozenset({"nvidia1"})}),
                           "/r")[2] == []


def test_sandbox_command_falls_back_to_unshare_and_says_so():
    spec = training_spec(gpus=[])
    no_bwrap = HostLayout(**{**MERGED_USR.__dict__, "bwrap": ""})
    kind, argv, notes = sandbox_command(spec, no_bwrap, "/r")
    assert kind == "unshare" and argv == unshare_argv(spec, no_bwrap, "/r")
    assert notes == ["bubblewrap is not installed: the run uses the unshare fallback (chroot, no user namespace)"]
    kind, _, notes = sandbox_command(spec, MERGED_USR, "/r", prefer="unshare")
    assert kind == "unshare" and notes == []
    _, _, notes = sandbox_command(spec, HostLayout(**{**no_bwrap.__dict__, "setpriv": ""}), "/r")
    assert notes[-1] == "setpriv is not installed: the run keeps root's capabilities"
    with pytest.raises(SandboxUnavailable):
        sandbox_command(spec, HostLayout(), "/r")


# unshare fallback ------------------------------------------------------------------------------------


def test_unshare_argv_golden():
    spec = RunSpec("training-5", "python 'a b.py'", env={"X": "1=2"},
                   mounts=[Mount("/srv/in", "/kqi/input"), Mount("/srv/my out", "/kqi/output")]).validate()
    assert unshare_argv(spec, MERGED_USR, "/runs/training-5/root") == [
        "/usr/bin/unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child",
        "--ipc", "--uts", "--net", "--",
        "/bin/sh", "-c", unshare_prologue(spec, MERGED_USR, "/runs/training-5/root"), "kqi-sandbox",
        "/usr/bin/setpriv", "--bounding-set", "-all", "--inh-caps", "-all", "--no-new-privs",
        "/bin/sh", "-c", 'cd "$1" || exit 126; exec /bin/sh -c "$2"', "kqi-run", "/kqi/git", "python 'a b.py'",
    ]


def test_unshare_prologue_golden():
    spec = RunSpec("training-5", "true", mounts=[Mount("/srv/in", "/kqi/input"), Mount("/srv/my out", "/kqi/output")],
                   gpus=[0], env={"CUDA_VISIBLE_DEVICES": "0"}).validate()
    layout = HostLayout(top_level={"bin": "usr/bin", "lib64": ""}, dev_nodes=frozenset({"nvidia0", "nvidiactl"}),
                        etc=(("passwd", ""), ("ssl/certs", "")))
    assert unshare_prologue(spec, layout, "/runs/training-5/root").splitlines() == [
        "set -e",
        "kqi_run_path=$PATH",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "KQI_ROOT_DIR=/runs/training-5/root",
        'mount -t tmpfs -o mode=755 kqi-root "$KQI_ROOT_DIR"',
        'mkdir -p "$KQI_ROOT_DIR/usr" "$KQI_ROOT_DIR/etc" "$KQI_ROOT_DIR/dev" "$KQI_ROOT_DIR/proc" "$KQI_ROOT_DIR/tmp"',
        'if [ -d /usr ]; then mkdir -p "$KQI_ROOT_DIR"/usr; else mkdir -p "$(dirname "$KQI_ROOT_DIR"/usr)"; touch "$KQI_ROOT_DIR"/usr; fi',
        'mount --bind /usr "$KQI_ROOT_DIR"/usr',
        'mount -o remount,bind,ro,nosuid,nodev "$KQI_ROOT_DIR"/usr',
        'mount -t tmpfs -o mode=755,nosuid,nodev kqi-etc "$KQI_ROOT_DIR/etc"',
        'cp -a --parents -- /etc/passwd /etc/ssl/certs "$KQI_ROOT_DIR"',
        'mount -o remount,ro,nosuid,nodev "$KQI_ROOT_DIR/etc"',
        'ln -s usr/bin "$KQI_ROOT_DIR/bin"',
        'if [ -d /lib64 ]; then mkdir -p "$KQI_ROOT_DIR"/lib64; else mkdir -p "$(dirname "$KQI_ROOT_DIR"/lib64)"; touch "$KQI_ROOT_DIR"/lib64; fi',
        'mount --bind /lib64 "$KQI_ROOT_DIR"/lib64',
        'mount -o remount,bind,ro "$KQI_ROOT_DIR"/lib64',
        'mount -t tmpfs -o mode=755,nosuid kqi-dev "$KQI_ROOT_DIR/dev"',
        'touch "$KQI_ROOT_DIR/dev/null"', 'mount --bind /dev/null "$KQI_ROOT_DIR/dev/null"',
        'touch "$KQI_ROOT_DIR/dev/zero"', 'mount --bind /dev/zero "$KQI_ROOT_DIR/dev/zero"',
        'touch "$KQI_ROOT_DIR/dev/full"', 'mount --bind /dev/full "$KQI_ROOT_DIR/dev/full"',
        'touch "$KQI_ROOT_DIR/dev/random"', 'mount --bind /dev/random "$KQI_ROOT_DIR/dev/random"',
        'touch "$KQI_ROOT_DIR/dev/urandom"', 'mount --bind /dev/urandom "$KQI_ROOT_DIR/dev/urandom"',
        'touch "$KQI_ROOT_DIR/dev/tty"', 'mount --bind /dev/tty "$KQI_ROOT_DIR/dev/tty"',
        'ln -s /proc/self/fd "$KQI_ROOT_DIR/dev/fd"', 'ln -s /proc/self/fd/0 "$KQI_ROOT_DIR/dev/stdin"',
        'ln -s /proc/self/fd/1 "$KQI_ROOT_DIR/dev/stdout"', 'ln -s /proc/self/fd/2 "$KQI_ROOT_DIR/dev/stderr"',
        'mkdir "$KQI_ROOT_DIR/dev/shm" "$KQI_ROOT_DIR/dev/pts"',
        'mount -t tmpfs -o mode=1777,nosuid,nodev kqi-shm "$KQI_ROOT_DIR/dev/shm"',
        'mount -t devpts -o newinstance,ptmxmode=0666 devpts "$KQI_ROOT_DIR/dev/pts"',
        'ln -s pts/ptmx "$KQI_ROOT_DIR/dev/ptmx"',
        'touch "$KQI_ROOT_DIR/dev/nvidiactl"', 'mount --bind /dev/nvidiactl "$KQI_ROOT_DIR/dev/nvidiactl"',
        'touch "$KQI_ROOT_DIR/dev/nvidia0"', 'mount --bind /dev/nvidia0 "$KQI_ROOT_DIR/dev/nvidia0"',
        'mount -t proc -o nosuid,nodev,noexec proc "$KQI_ROOT_DIR/proc"',
        'mount -t tmpfs -o mode=1777,nosuid,nodev kqi-tmp "$KQI_ROOT_DIR/tmp"',
        'if [ -d /sys ]; then mkdir -p "$KQI_ROOT_DIR"/sys; else mkdir -p "$(dirname "$KQI_ROOT_DIR"/sys)"; touch "$KQI_ROOT_DIR"/sys; fi',
        'mount --bind /sys "$KQI_ROOT_DIR"/sys',
        'mount -o remount,bind,ro "$KQI_ROOT_DIR"/sys',
        "if command -v ip >/dev/null; then ip link set lo up; fi",
        'if [ -d /srv/in ]; then mkdir -p "$KQI_ROOT_DIR"/kqi/input; else mkdir -p "$(dirname "$KQI_ROOT_DIR"/kqi/input)"; '
        'touch "$KQI_ROOT_DIR"/kqi/input; fi',
        'mount --bind /srv/in "$KQI_ROOT_DIR"/kqi/input',
        'mount -o remount,bind,ro "$KQI_ROOT_DIR"/kqi/input',
        """if [ -d '/srv/my out' ]; then mkdir -p "$KQI_ROOT_DIR"/kqi/output; else mkdir -p "$(dirname "$KQI_ROOT_DIR"/kqi/output)"; """
        """touch "$KQI_ROOT_DIR"/kqi/output; fi""",
        """mount --bind '/srv/my out' "$KQI_ROOT_DIR"/kqi/output""",
        'mkdir -p "$KQI_ROOT_DIR"/kqi/git',
        "set +e",
        'set -- "$(command -v chroot)" "$KQI_ROOT_DIR" "$@"',
        "PATH=$kqi_run_path",
        "unset KQI_ROOT_DIR kqi_run_path",
        '"$@" &',
        "wait $!",
        "exit $?",
    ]


# cgroups ---------------------------------------------------------------------------------------------

HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
HYBRID_SELF = """\
9:name=systemd:/
8:pids:/
4:memory:/process_api/ee4e
1:cpu,cpuacct:/
0::/
"""
V2_MOUNTINFO = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
V2_SELF = "0::/system.slice/kqi-hub.service\n"
DOCKER_V1_MOUNTINFO = ("900 800 0:40 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n"
                       "901 800 0:41 /docker/abc /sys/fs/cgroup/pids ro,nosuid - cgroup cgroup rw,pids\n")
DOCKER_V1_SELF = "12:pids:/docker/abc/x\n4:memory:/docker/abc\n"


def test_parse_hybrid_v1_hierarchies():
    found = parse_hierarchies(HYBRID_MOUNTINFO, HYBRID_SELF)
    assert found == [
        Hierarchy(1, "/sys/fs/cgroup/cpu,cpuacct", ("cpu", "cpuacct"), ""),
        Hierarchy(1, "/sys/fs/cgroup/memory", ("memory",), "process_api/ee4e"),
        Hierarchy(1, "/sys/fs/cgroup/pids", ("pids",), ""),
        Hierarchy(2, "/sys/fs/cgroup/unified", (), ""),
    ]
    version, chosen = choose_hierarchies(found)
    assert version == 1 and {c: h.mount for c, h in chosen.items()} == {
        "cpu": "/sys/fs/cgroup/cpu,cpuacct", "memory": "/sys/fs/cgroup/memory", "pids": "/sys/fs/cgroup/pids"}


def test_parse_v2_and_container_roots():
    found = parse_hierarchies(V2_MOUNTINFO, V2_SELF, ("cpuset", "cpu", "io", "memory", "pids"))
    assert found == [Hierarchy(2, "/sys/fs/cgroup", ("cpuset", "cpu", "io", "memory", "pids"),
                               "system.slice/kqi-hub.service")]
    assert choose_hierarchies(found)[0] == 2
    assert set(choose_hierarchies(found)[1]) == {"pids", "memory", "cpu"}
    # a v1 container without a cgroup namespace: the mount's root is the container's cgroup
    assert parse_hierarchies(DOCKER_V1_MOUNTINFO, DOCKER_V1_SELF) == [
        Hierarchy(1, "/sys/fs/cgroup/memory", ("memory",), ""),
        Hierarchy(1, "/sys/fs/cgroup/pids", ("pids",), "x"),
    ]
    assert choose_hierarchies([]) == (0, {})


def test_limit_writes():
    assert v2_limit_writes(1.5, 64 << 20, 256, has_swap=True) == [
        ("memory.max", "67108864"), ("memory.swap.max", "0"), ("memory.oom.group", "1"),
        ("cpu.max", "150000 100000"), ("pids.max", "256")]
    assert v2_limit_writes(0, 0, 0, has_swap=True) == []
    assert v1_limit_writes(0.25, 1 << 30, 0, has_memsw=True) == [
        ("memory", "memory.limit_in_bytes", "1073741824"), ("memory", "memory.memsw.limit_in_bytes", "1073741824"),
        ("cpu", "cpu.cfs_period_us", "100000"), ("cpu", "cpu.cfs_quota_us", "25000")]
    assert v1_limit_writes(0.001, 0, 10, has_memsw=False) == [
        ("cpu", "cpu.cfs_period_us", "100000"), ("cpu", "cpu.cfs_quota_us", "1000"), ("pids", "pids.max", "10")]


def test_an_image_pull_is_summed_up_layer_by_layer():
    from kqi_services.executor.pull import PullProgress

    pull = PullProgress("registry.local:5000/team/torch:2")
    assert pull.message() == "Pulling image registry.local:5000/team/torch:2"
    assert not pull.update({"status": "Pulling from team/torch", "id": "2"})  # the stream's header, no layer
    assert pull.update({"status": "Pulling fs layer", "id": "a", "progressDetail": {}})
    assert pull.update({"status": "Downloading", "id": "a", "progressDetail": {"current": 5_000_000,
                                                                                "total": 20_000_000}})
    assert not pull.update({"status": "Downloading", "id": "a", "progressDetail": {"current": 10_000_000,
                                                                                    "total": 20_000_000}})
    assert pull.update({"status": "Already exists", "id": "b", "progressDetail": {}})
    assert pull.message() == "Pulling image registry.local:5000/team/torch:2: 1 of 2 layers done, 10.0 of 20.0 MB"
    pull.update({"status": "Pull complete", "id": "a", "progressDetail": {}})
    assert pull.to_dict()["layersDone"] == 2 and pull.layers["a"]["current"] == 20_000_000
    pull.done = True
    assert pull.message() == "Pulled image registry.local:5000/team/torch:2"
    pull.error = "unauthorized: authentication required"
    assert pull.message() == "Pulling image registry.local:5000/team/torch:2 failed: unauthorized: authentication required"
