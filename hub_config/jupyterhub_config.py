"""KQI Hub's JupyterHub config (embedded defaults). Start it with `kqi-hub` (`make run`).

Everything is in hub_config.apply_config; KQI_HUB_CONFIG names an extra
config file (LDAP, OAuth, PostgreSQL…) loaded after it.
"""

import os

from hub_config import apply_config
from kqi_services.hub.settings import PlatformSettings

c = get_config()  # noqa: F821 - provided by JupyterHub
settings = PlatformSettings()
apply_config(c, settings)

if settings.hub_config_profile:
    load_subconfig(os.path.abspath(settings.hub_config_profile))  # noqa: F821
