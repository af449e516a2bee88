"""The commands of runs in their own images (pure builders) and the wheelhouse as a PEP 503 index, without a hub."""

from __future__ import annotations

import subprocess

from kqi_services.jobs.imagetools import ImageTools
from kqi_services.wheelhouse import Wheelhouse, normalized, project_of

TOOLS = ImageTools("http://127.0.0.1:8000/services/kqi/wheels/simple/", notebook_requirements=("jupyterlab==4.6.6",),
                   client_requirements=("click==8.5.1",), platform_requirement="kqi-hub==0.1.0")
PIP = ('python3 -m pip install --disable-pip-version-check --no-input --progress-bar off --quiet '
       '--root-user-action=ignore --index-url "$KQI_WHEEL_INDEX"')


def test_a_job_installs_the_cli_only_where_the_image_lacks_it_and_python_has_pip():
    assert TOOLS.job_command("python -u train.py") == (
        "if ! command -v kqi >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then ("
        "echo '[kqi] installing the kqi CLI from the platform'\"'\"'s wheels' && "
        "KQI_WHEEL_INDEX=http://127.0.0.1:8000/services/kqi/wheels/simple/ && export KQI_WHEEL_INDEX && "
        f"{PIP} click==8.5.1 && {PIP} --no-deps kqi-hub==0.1.0 >/dev/null"
        " || echo '[kqi] the kqi CLI could not be installed; the command runs without it'); fi\n"
        "python -u train.py")
    assert ImageTools("http://x/wheels/simple/", install=False).job_command("true") == "true"


def test_the_job_prelude_leaves_the_command_alone_in_a_shell_without_python(tmp_path):
    """Run by a real sh with a PATH holding neither kqi nor python3: only the command's own output, its exit code."""
    command = TOOLS.job_command('echo "ran $KQI_WHEEL_INDEX"; exit 3')
    done = subprocess.run(["/bin/sh", "-c", command], env={"PATH": str(tmp_path)}, capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (3, "ran \n", "")


def test_a_notebook_runs_the_images_python_and_installs_its_server_when_missing():
    assert TOOLS.notebook_server(["/venv/bin/jupyterhub-singleuser", "--debug"]) == [
        "python3", "-m", "jupyterhub.singleuser", "--allow-root", "--debug"]
    prelude = TOOLS.notebook_prelude()
    assert prelude.startswith("if ! python3 -c 'import jupyterhub.singleuser, jupyterlab, kqi_services.labserver, "
                              "click, requests, tqdm' >/dev/null 2>&1; then\n")
    assert "a notebook image needs python3 and pip" in prelude and "exit 127" in prelude
    assert f"{PIP} jupyterlab==4.6.6 click==8.5.1 && {PIP} --no-deps kqi-hub==0.1.0" in prelude


def test_the_wheelhouse_reads_as_a_pep503_index(tmp_path):
    for name in ("Jupyter_Server-2.21.1-py3-none-any.whl", "kqi_hub-0.1.0-py3-none-any.whl", "pamela-1.2.0.tar.gz",
                 ".built", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.whl").mkdir()
    house = Wheelhouse(str(tmp_path))
    assert house.projects() == {"jupyter-server": ["Jupyter_Server-2.21.1-py3-none-any.whl"],
                                "kqi-hub": ["kqi_hub-0.1.0-py3-none-any.whl"], "pamela": ["pamela-1.2.0.tar.gz"]}
    assert house.path_of("pamela-1.2.0.tar.gz") == str(tmp_path / "pamela-1.2.0.tar.gz")
    for bad in ("../pamela-1.2.0.tar.gz", "/etc/passwd", ".built", "notes.txt", "sub.whl", "absent-1-py3-none-any.whl"):
        assert house.path_of(bad) is None, bad
    assert normalized("Foo.Bar__baz") == "foo-bar-baz" and project_of("a_b-1.0.zip") == "a-b"
    assert house.has_platform_wheel() and Wheelhouse(str(tmp_path / "absent")).files() == []
