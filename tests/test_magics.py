"""The ``%kqi`` magics in a headless IPython against the real platform: values a notebook can use."""

import os

import pytest
from conftest import unique
from IPython.testing.globalipapp import start_ipython

pytestmark = pytest.mark.platform


@pytest.fixture(scope="module")
def ip():
    shell = start_ipython()
    shell.run_line_magic("load_ext", "kqi_services")
    return shell


@pytest.fixture
def notebook_env(platform, lab, monkeypatch, tmp_path):  # noqa: F811
    """Inside a platform notebook: KQI_SERVER and the server's hub token, no config file."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KQI_TOKEN", raising=False)
    monkeypatch.setenv("KQI_SERVER", platform.url + "/services/kqi")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", lab["api"].token)
    monkeypatch.chdir(tmp_path)
    return lab


def test_data_list_and_get_return_models(ip, notebook_env):
    lab = notebook_env
    listed = ip.run_line_magic("kqi", "data list")
    assert [d["id"] for d in listed] == [lab["data"]["id"]]
    assert ip.run_line_magic("kqi", f"data get {lab['data']['id']}")["fileNames"] == ["x.csv"]
    assert ip.run_line_magic("kqi", "dataset list --name ds")[0]["id"] == lab["dataset"]["id"]


def test_train_wait_download(ip, notebook_env, capsys, tmp_path):
    lab = notebook_env
    run_id = ip.run_line_magic(
        "kqi", f"train -n {unique('nb')[:30]} -rim python -rt 3.11 -d {lab['dataset']['id']} "
               f"-gid {lab['git']['id']} -go kqi -gr model -c 1 -mem 1 -g 0 "
               "-e 'echo from the notebook; mkdir -p /kqi/output/m; echo 0.93 > /kqi/output/m/acc.txt'")
    assert isinstance(run_id, int)
    capsys.readouterr()
    assert ip.run_line_magic("kqi", f"wait {run_id}") == "Completed"
    assert "from the notebook" in capsys.readouterr().out  # the log, printed live
    paths = ip.run_line_magic("kqi", f"download {run_id}")
    assert paths == [os.path.join(f"training-{run_id}", "m", "acc.txt")]
    assert open(paths[0]).read() == "0.93\n"
    paths = ip.run_line_magic("kqi", f"download {run_id} results")
    assert open(os.path.join(tmp_path, "results", "m", "acc.txt")).read() == "0.93\n"
    assert ip.run_line_magic("kqi", f"training get {run_id}")["status"] == "Completed"


def test_infer_returns_the_id_and_with_wait_the_value(ip, notebook_env, capsys):
    lab = notebook_env
    common = (f"-rim python -rt 3.11 -d {lab['dataset']['id']} -gid {lab['git']['id']} -go kqi -gr model "
              "-c 1 -mem 1 -g 0")
    capsys.readouterr()
    value = ip.run_line_magic("kqi", f"infer --wait -n {unique('nb-inf')[:30]} {common} "
                                     "-e 'echo inferring; echo 0.81 f1 > /kqi/output/value.txt'")
    assert value == "0.81 f1"
    printed = capsys.readouterr()
    assert "inferring" in printed.out and "status: Completed" in printed.err  # the log, printed live
    run_id = ip.run_line_magic("kqi", f"infer -n {unique('nb-inf')[:30]} {common} -e 'true'")
    assert isinstance(run_id, int)
    assert ip.run_line_magic("kqi", f"inference get {run_id}")["id"] == run_id
    assert ip.run_line_magic("kqi", f"inference log -f {run_id}") == "Completed"
    assert ip.run_line_magic("kqi", f"infer --wait -n {unique('nb-inf')[:30]} {common} -e 'true'") is None  # no value
    assert ip.run_line_magic("kqi", "infer --wait -n x") is None
    assert "Missing option" in capsys.readouterr().err


def test_preprocess_returns_run_ids_and_with_wait_the_data_made(ip, notebook_env, capsys, tmp_path):
    lab = notebook_env
    api = lab["api"]
    r = api.post("/preprocessings", {"name": unique("nb-pre"), "containerImage": {"image": "python", "tag": "3.11"},
                                     "gitModel": {"gitId": lab["git"]["id"], "owner": "kqi", "repository": "model"},
                                     "entryPoint": "mkdir -p /kqi/output/copy && cp /kqi/input/$DATA_ID/* "
                                                   "/kqi/output/copy/ && echo copied $DATA_NAME",
                                     "cpu": 1, "memory": 1, "gpu": 0})
    assert r.status_code == 201, r.text
    pre_id = r.json()["id"]
    other = api.post("/data", {"name": "other"}).json()["id"]
    capsys.readouterr()
    made = ip.run_line_magic("kqi", f"preprocess --wait {pre_id} -did {lab['data']['id']} -c 1 -mem 1 -g 0")
    assert [api.get(f"/data/{i}").json()["name"] for i in made] == ["copy"]
    assert api.get(f"/data/{made[0]}").json()["fileNames"] == ["x.csv"]
    assert "copied inputs" in capsys.readouterr().out
    run_ids = ip.run_line_magic("kqi", f"preprocess {pre_id} -did {other} -c 1 -mem 1 -g 0")
    histories = {h["dataId"]: h for h in ip.run_line_magic("kqi", f"preprocessing list-histories {pre_id}")}
    assert run_ids == [histories[other]["runId"]]
    assert ip.run_line_magic("kqi", f"preprocess {pre_id} -did {other} -c 1 -mem 1 -g 0") is None  # already made
    assert "[ERROR] 409" in capsys.readouterr().err


def test_errors_print_the_message_and_return_none(ip, notebook_env, capsys):
    capsys.readouterr()
    assert ip.run_line_magic("kqi", "training get 987654321") is None
    assert "[ERROR] 404" in capsys.readouterr().err
    assert ip.run_line_magic("kqi", "train -n x") is None
    assert "Missing option" in capsys.readouterr().err
    assert ip.run_line_magic("kqi", "data list 'unclosed") is None
    assert "[ERROR]" in capsys.readouterr().err


def test_without_a_server_it_says_how_to_log_in(ip, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    for key in ("KQI_SERVER", "KQI_TOKEN", "JUPYTERHUB_API_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    assert ip.run_line_magic("kqi", "data list") is None
    assert "kqi account login" in capsys.readouterr().err
