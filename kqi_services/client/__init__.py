"""The one client library of the kqi service: used by the ``kqi`` CLI, the ``%kqi`` magics and the lab extension.

>>> client = KqiClient.from_environment()          # KQI_SERVER/KQI_TOKEN, the notebook's token, ~/.kqi/config.json
>>> client.data.list(name="cats")                   # resource helpers return the API's JSON models
>>> client.request("GET", "/training/3")            # or any v2 path, relative to /api/v2

It imports nothing from the server side: only ``requests`` and the stdlib.
"""

from .config import config_path, read_config, update_config
from .errors import KqiApiError, KqiConfigError
from .resources import FINISHED, Inferences, PreprocessingRuns, Preprocessings, Trainings
from .session import KqiClient
from .transfer import PART_SIZE

__all__ = ["FINISHED", "PART_SIZE", "Inferences", "KqiApiError", "KqiClient", "KqiConfigError", "PreprocessingRuns",
           "Preprocessings", "Trainings", "config_path", "read_config", "update_config"]
