"""``kqi training``: upstream's commands (shared with ``kqi inference``, see :mod:`.runs`), plus ``user-cancel``,
``log [-f]`` and ``tensorboard-halt``."""

from __future__ import annotations

import click

from .output import id_command
from .runs import RunKind, add_run_commands


@click.group()
def training():
    """Create and manage KAMONOHASHI training"""


TRAINING = RunKind(
    noun="training",
    resource=lambda client: client.trainings,
    column=("tags", lambda x: x.get("tags")),
    parents=(("-pid", "--parent-ids", "parentIds", "A parent id of this training  [multiple]"),),
)
add_run_commands(training, TRAINING)

tensorboard_halt = id_command(training, "tensorboard-halt", lambda c, id: c.trainings.tensorboard_halt(id), "halted",
                              "Halt tensorboard")
