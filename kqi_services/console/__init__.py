"""The KQI console's built bundle (``static/``: ``jlpm build:console`` from ``labextension/src/console``),
served by the kqi service at ``/services/kqi/`` (``handlers/browser.py``)."""
