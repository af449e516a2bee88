"""hub_config.apply_config on a bare traitlets Config: no hub needed."""

import os

from traitlets.config import Config

from hub_config import SERVICE_NAME, USER_SCOPES, apply_config
from kqi_services.hub.settings import PlatformSettings


def test_embedded_defaults_keep_all_state_in_one_directory(tmp_path):
    c = Config()
    settings = PlatformSettings(state_dir=str(tmp_path), port=9100)
    apply_config(c, settings)
    assert c.JupyterHub.bind_url == "http://127.0.0.1:9100/"
    assert c.JupyterHub.hub_port == 9101
    assert c.ConfigurableHTTPProxy.api_url == "http://127.0.0.1:9102"
    for path in (c.JupyterHub.cookie_secret_file, c.ConfigurableHTTPProxy.pid_file, c.JupyterHub.pid_file):
        assert path.startswith(str(tmp_path))
    assert c.JupyterHub.db_url == "sqlite:///" + os.path.join(str(tmp_path), "jupyterhub.sqlite")
    assert c.JupyterHub.authenticator_class == "kqi_services.hub.authenticator.KqiAuthenticator"
    assert c.KqiAuthenticator.db_url == settings.db_url
    assert c.JupyterHub.token_expires_in_max_seconds == 90 * 24 * 3600


def test_kqi_service_and_roles(tmp_path):
    c = Config()
    apply_config(c, PlatformSettings(state_dir=str(tmp_path), port=9100))
    (service,) = c.JupyterHub.services
    assert service["name"] == SERVICE_NAME and service["url"] == "http://127.0.0.1:9103"
    assert service["environment"]["KQI_STATE_DIR"] == str(tmp_path)
    # the service token is a secret kept in the state dir, the same at each start
    again = Config()
    apply_config(again, PlatformSettings(state_dir=str(tmp_path), port=9100))
    assert again.JupyterHub.services[0]["api_token"] == service["api_token"]
    assert oct(os.stat(os.path.join(str(tmp_path), "secrets", "kqi-service-token")).st_mode & 0o777) == "0o600"
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert roles["user"]["scopes"] == USER_SCOPES and "access:services!service=kqi" in USER_SCOPES
    assert roles["admin"]["services"] == [SERVICE_NAME]


def test_settings_read_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("KQI_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("KQI_PORT", "8800")
    monkeypatch.setenv("KQI_ADMIN_USER", "Root")
    s = PlatformSettings()
    assert (s.state_dir, s.port, s.service_port, s.admin_user) == (str(tmp_path), 8800, 8803, "root")
    assert s.db_url.endswith("kqi.sqlite")
