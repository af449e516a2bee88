"""``python -m kqi_services`` runs the kqi service (JupyterHub starts it)."""

from .app import main

main()
