"""``kqi inference``: upstream's commands, on the same bodies as ``kqi training`` (:mod:`.runs`).

Added: ``-f`` (a JSON body) and ``-iid`` (parent inferences, mounted at
``/kqi/parent`` beside the parent trainings) on ``create``, ``-t`` tags,
``--json``, ``user-cancel`` and ``log [-f]``; the list shows each run's
``value`` (the first line of its ``/kqi/output/value.txt``).
"""

from __future__ import annotations

import click

from kqi_services.client import Inferences

from .runs import RunKind, add_run_commands


@click.group()
def inference():
    """Create and manage KAMONOHASHI inference"""


INFERENCE = RunKind(
    noun="inference",
    resource=Inferences,
    column=("value", lambda x: x.get("outputValue")),
    parents=(("-pid", "--parent-ids", "parentIds",
              "A parent training id of this inference; its output is mounted at /kqi/parent  [multiple]"),
             ("-iid", "--inference-ids", "inferenceIds",
              "A parent inference id of this inference; its output is mounted at /kqi/parent  [multiple]")),
)
add_run_commands(inference, INFERENCE)
