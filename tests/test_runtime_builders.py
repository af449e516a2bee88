"""Golden values of the runtime contract's builders (kqi_services.jobs.runtime), no hub, no process.

Every expected value is written out here, as DESIGN.md's "job runtime contract"
states it, not computed by the code under test: the /kqi paths of a run, its
mounts, its environment (fixed variables win over the user's options,
``PYTHONUNBUFFERED=1`` unless the user sets it), the host's proxies passed on,
and the ports a run's network namespace is given.
"""

import pytest

from kqi_services.executor.netns import PortForward
from kqi_services.jobs.kinds import INFERENCE, NOTEBOOK, PREPROCESSING, TRAINING
from kqi_services.jobs.runtime import (
    WORKDIR,
    RunPaths,
    proxy_variables,
    run_environment,
    run_forwards,
    run_mounts,
)

TRAINING_ARGS = dict(
    user_options={"MY_OPTION": "42", "EMPTY": ""},
    dataset_id=7,
    parent_ids=[3, 5],
    repository_url="https://git.example.com/kqi/model.git",
    commit="0123456789abcdef0123456789abcdef01234567",
    git_token="ghp_usertoken",
    server_url="http://127.0.0.1:8081/services/kqi",
    run_token="kqirun_abc",
    entry_point="python3 train.py --epochs 3",
    zip_output=True,
    gpu_ids=[0, 2],
    proxies={"HTTP_PROXY": "http://proxy:3128", "NO_PROXY": "localhost,127.0.0.1"},
)


def test_run_paths_of_each_kind():
    paths = RunPaths.of("/var/kqi/runs", TRAINING, 12)
    assert paths == RunPaths("/var/kqi/runs/training-12")
    assert (paths.git, paths.input, paths.output, paths.attach) == (
        "/var/kqi/runs/training-12/git", "/var/kqi/runs/training-12/input",
        "/var/kqi/runs/training-12/output", "/var/kqi/runs/training-12/attach")
    assert RunPaths.of("/r", INFERENCE, 1).root == "/r/inference-1"
    assert RunPaths.of("/r", PREPROCESSING, 2).root == "/r/preprocessing-2"
    assert RunPaths.of("/r", NOTEBOOK, 3).output == "/r/notebook-3/output"
    assert WORKDIR == "/kqi/git"


def test_mounts_with_no_parent():
    assert run_mounts(RunPaths("/runs/training-4"), []) == [
        ("/runs/training-4/git", "/kqi/git", False),
        ("/runs/training-4/input", "/kqi/input", True),
        ("/runs/training-4/output", "/kqi/output", False),
        ("/runs/training-4/attach", "/kqi/attach", True),
    ]


def test_mounts_with_one_parent_at_kqi_parent():
    assert run_mounts(RunPaths("/runs/training-4"), [(3, "/runs/training-3/output")]) == [
        ("/runs/training-4/git", "/kqi/git", False),
        ("/runs/training-4/input", "/kqi/input", True),
        ("/runs/training-4/output", "/kqi/output", False),
        ("/runs/training-4/attach", "/kqi/attach", True),
        ("/runs/training-3/output", "/kqi/parent", True),
    ]


def test_mounts_with_two_parents_at_kqi_parent_id_in_order():
    parents = [(5, "/runs/training-5/output"), (3, "/runs/training-3/output")]
    assert run_mounts(RunPaths("/runs/training-9"), parents) == [
        ("/runs/training-9/git", "/kqi/git", False),
        ("/runs/training-9/input", "/kqi/input", True),
        ("/runs/training-9/output", "/kqi/output", False),
        ("/runs/training-9/attach", "/kqi/attach", True),
        ("/runs/training-5/output", "/kqi/parent/5", True),
        ("/runs/training-3/output", "/kqi/parent/3", True),
    ]


def test_environment_of_a_training_with_dataset_parents_git_gpus_options_and_proxies():
    assert run_environment(TRAINING, 12, **TRAINING_ARGS) == {
        "PYTHONUNBUFFERED": "1",
        "MY_OPTION": "42",
        "EMPTY": "",
        "HTTP_PROXY": "http://proxy:3128",
        "NO_PROXY": "localhost,127.0.0.1",
        "LC_ALL": "C.UTF-8",
        "LANG": "C.UTF-8",
        "COLUMNS": "1000",
        "TRAINING_ID": "12",
        "DATASET_ID": "7",
        "PARENT_ID": "3,5",
        "MODEL_REPOSITORY": "https://git.example.com/kqi/model.git",
        "MODEL_REPOSITORY_TOKEN": "ghp_usertoken",
        "COMMIT_ID": "0123456789abcdef0123456789abcdef01234567",
        "KQI_SERVER": "http://127.0.0.1:8081/services/kqi",
        "KQI_TOKEN": "kqirun_abc",
        "ENTRY_POINT": "python3 train.py --epochs 3",
        "ZIP_FILE_CREATED": "true",
        "CUDA_VISIBLE_DEVICES": "0,2",
        "NVIDIA_VISIBLE_DEVICES": "0,2",
    }


def test_environment_of_a_run_without_git_dataset_parents_gpus_or_proxies():
    env = run_environment(PREPROCESSING, 3, user_options={}, dataset_id=None, parent_ids=[], repository_url="",
                          commit="", git_token=None, server_url="http://127.0.0.1:9000/services/kqi",
                          run_token="kqirun_x", entry_point="true", zip_output=False, gpu_ids=[])
    assert env == {
        "PYTHONUNBUFFERED": "1",
        "LC_ALL": "C.UTF-8",
        "LANG": "C.UTF-8",
        "COLUMNS": "1000",
        "PREPROCESSING_ID": "3",
        "DATASET_ID": "",
        "PARENT_ID": "",
        "MODEL_REPOSITORY": "",
        "MODEL_REPOSITORY_TOKEN": "",
        "COMMIT_ID": "",
        "KQI_SERVER": "http://127.0.0.1:9000/services/kqi",
        "KQI_TOKEN": "kqirun_x",
        "ENTRY_POINT": "true",
        "ZIP_FILE_CREATED": "false",
        "CUDA_VISIBLE_DEVICES": "",
        "NVIDIA_VISIBLE_DEVICES": "none",
    }


@pytest.mark.parametrize("kind, variable", [(TRAINING, "TRAINING_ID"), (INFERENCE, "INFERENCE_ID"),
                                            (PREPROCESSING, "PREPROCESSING_ID"), (NOTEBOOK, "NOTEBOOK_ID")])
def test_the_id_variable_is_the_kinds_and_only_that_one(kind, variable):
    env = run_environment(kind, 41, **TRAINING_ARGS)
    assert env[variable] == "41"
    assert {"TRAINING_ID", "INFERENCE_ID", "PREPROCESSING_ID", "NOTEBOOK_ID"} & set(env) == {variable}


def test_user_options_do_not_override_the_fixed_variables():
    """The contract: user variables may not override the fixed ones (submit refuses them; this is the last line)."""
    hostile = {name: "user-value" for name in (
        "LC_ALL", "LANG", "COLUMNS", "TRAINING_ID", "DATASET_ID", "PARENT_ID", "MODEL_REPOSITORY",
        "MODEL_REPOSITORY_TOKEN", "COMMIT_ID", "KQI_SERVER", "KQI_TOKEN", "ENTRY_POINT", "ZIP_FILE_CREATED",
        "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES")}
    env = run_environment(TRAINING, 12, **{**TRAINING_ARGS, "user_options": {**hostile, "MINE": "kept"}})
    assert env == {
        "PYTHONUNBUFFERED": "1",
        "MINE": "kept",
        "HTTP_PROXY": "http://proxy:3128",
        "NO_PROXY": "localhost,127.0.0.1",
        "LC_ALL": "C.UTF-8",
        "LANG": "C.UTF-8",
        "COLUMNS": "1000",
        "TRAINING_ID": "12",
        "DATASET_ID": "7",
        "PARENT_ID": "3,5",
        "MODEL_REPOSITORY": "https://git.example.com/kqi/model.git",
        "MODEL_REPOSITORY_TOKEN": "ghp_usertoken",
        "COMMIT_ID": "0123456789abcdef0123456789abcdef01234567",
        "KQI_SERVER": "http://127.0.0.1:8081/services/kqi",
        "KQI_TOKEN": "kqirun_abc",
        "ENTRY_POINT": "python3 train.py --epochs 3",
        "ZIP_FILE_CREATED": "true",
        "CUDA_VISIBLE_DEVICES": "0,2",
        "NVIDIA_VISIBLE_DEVICES": "0,2",
    }


@pytest.mark.parametrize("value", ["0", "", "1"])
def test_pythonunbuffered_is_1_unless_the_user_sets_it(value):
    options = {"PYTHONUNBUFFERED": value}
    assert run_environment(TRAINING, 1, **{**TRAINING_ARGS, "user_options": options})["PYTHONUNBUFFERED"] == value
    assert run_environment(TRAINING, 1, **{**TRAINING_ARGS, "user_options": {}})["PYTHONUNBUFFERED"] == "1"


def test_a_users_proxy_wins_over_the_hosts():
    """Proxies are the host's defaults, not fixed: a run that names its own proxy gets it."""
    env = run_environment(TRAINING, 12, **{**TRAINING_ARGS, "user_options": {"HTTP_PROXY": "http://mine:8080"}})
    assert (env["HTTP_PROXY"], env["NO_PROXY"]) == ("http://mine:8080", "localhost,127.0.0.1")


def test_one_gpu_and_one_parent():
    env = run_environment(TRAINING, 2, **{**TRAINING_ARGS, "gpu_ids": [3], "parent_ids": [8]})
    assert (env["CUDA_VISIBLE_DEVICES"], env["NVIDIA_VISIBLE_DEVICES"], env["PARENT_ID"]) == ("3", "3", "8")


def test_proxy_variables_take_the_six_names_that_are_set_and_not_empty():
    environ = {"HTTP_PROXY": "http://p:1", "HTTPS_PROXY": "http://p:2", "NO_PROXY": "", "http_proxy": "http://p:3",
               "https_proxy": "http://p:4", "no_proxy": "localhost", "ALL_PROXY": "socks5://p:5",
               "FTP_PROXY": "http://p:6", "PATH": "/usr/bin", "KQI_TOKEN": "host-token"}
    assert proxy_variables(environ) == {"HTTP_PROXY": "http://p:1", "HTTPS_PROXY": "http://p:2",
                                        "http_proxy": "http://p:3", "https_proxy": "http://p:4",
                                        "no_proxy": "localhost"}
    assert proxy_variables({}) == {}
    assert proxy_variables({"PATH": "/bin"}) == {}


def test_forwards_of_a_training_reaching_the_service_on_loopback():
    assert run_forwards({"KQI_SERVER": "http://127.0.0.1:8081/services/kqi"}) == [
        PortForward("out", 8081, "127.0.0.1:8081")]


def test_forwards_of_a_notebook_dedupe_ports_map_ipv6_and_serve_its_port():
    env = {"KQI_SERVER": "http://127.0.0.1:8081/services/kqi",
           "JUPYTERHUB_API_URL": "http://localhost:8081/hub/api",  # the same port: one forward
           "JUPYTERHUB_ACTIVITY_URL": "http://[::1]:8082/hub/api/users/u/activity",
           "OTHER_URL": "http://127.0.0.1:9999/"}  # not a variable a run must reach
    assert run_forwards(env, 8888) == [
        PortForward("out", 8081, "127.0.0.1:8081"),
        PortForward("out", 8082, "[::1]:8082"),
        PortForward("in", 8888, "127.0.0.1:8888"),
    ]


@pytest.mark.parametrize("url, expected", [
    ("https://localhost/services/kqi", [PortForward("out", 443, "127.0.0.1:443")]),
    ("http://localhost/services/kqi", [PortForward("out", 80, "127.0.0.1:80")]),
    ("http://kqi.example.com:8081/services/kqi", []),  # not this machine's loopback: the run's own route
    ("http://10.0.0.5:8081/", []),
    ("http://127.0.0.1:99999/", []),  # no port at all (urlsplit refuses it)
    ("ftp://127.0.0.1/", []),  # no default port for the scheme
    ("", []),
])
def test_forwards_of_other_service_urls(url, expected):
    assert run_forwards({"KQI_SERVER": url}) == expected


def test_no_forwards_without_urls_and_only_the_inbound_port():
    assert run_forwards({}) == []
    assert run_forwards({}, 9000) == [PortForward("in", 9000, "127.0.0.1:9000")]
    assert run_forwards({"KQI_SERVER": "http://127.0.0.1:8081/"}, 0) == [PortForward("out", 8081, "127.0.0.1:8081")]


def test_container_names_and_image_references():
    from kqi_services.jobs.runtime import container_name, image_reference

    assert container_name("inference", "resnet-50", 9) == "inference-resnet-50-9"
    assert container_name("preprocessing", "Crop 画像 (v2)", 12) == "preprocessing-crop-v2-12"
    assert container_name("training", "画像", 3) == "training-3"
    assert len(container_name("training", "x" * 200, 1)) <= 63
    assert image_reference("team/torch", "2", "registry.local:5000", 4) == "registry.local:5000/team/torch:2"
    assert image_reference("python", "3.11", "registry-1.docker.io", 2) == "python:3.11"
    assert image_reference("python", None, None, None) == "python:latest"
    assert image_reference(None, "1", "h", 4) == ""
