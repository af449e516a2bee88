"""Profile: JupyterHub's own database on PostgreSQL (KQI_HUB_CONFIG=hub_config/profiles/postgres.py).

The kqi database follows KQI_DB_URL (`postgresql+psycopg://user:pw@host/kqi`);
this moves the hub's database too, from KQI_HUB_DB_URL.
"""

import os

c = get_config()  # noqa: F821
c.JupyterHub.db_url = os.environ["KQI_HUB_DB_URL"]
