"""Job kinds as data: what differs between a training, a preprocessing and an inference.

The engine, the runtime contract and the API handlers read these fields
instead of branching on the kind, so a new kind is one more entry.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JobKind:
    name: str  # "training"
    id_variable: str  # TRAINING_ID
    log_file: str  # training_stdout_stderr_{id}.log; a preprocessing's names its definition and data
    upload_type: str  # the upload/parameter type of its attached files
    attached_prefix: str  # object key prefix of its attached files
    input_layout: str  # "dataset" ({type}/{dataId}/file) or "data" ({dataId}/file)
    #: a notebook: started by the hub's spawner with its command, lives until stopped or expired,
    #: keeps /kqi/output across reruns; its log is not attached
    interactive: bool = False
    #: the API's path segment of its routes (``api/v2/{api_base}/…``): the contract says ``inferences``
    api_base: str = ""
    #: the request fields naming the runs it mounts at /kqi/parent, and the kind each names
    parent_fields: tuple[tuple[str, str], ...] = (("parentIds", "training"),)
    #: it reports the one line of /kqi/output/value.txt as ``outputValue``
    output_value: bool = False
    #: each directory of /kqi/output becomes a data when the run completes (a preprocessing)
    registers_data: bool = False

    @property
    def routes_base(self) -> str:
        return f"api/v2/{self.api_base or self.name}"

    def log_file_name(self, run) -> str:
        """The attached log's name: ``{kind}_stdout_stderr_{id}.log``; a preprocessing history's
        ``preproc_stdout_stderr_{preprocessingId}_{dataId}.log``, as the original names it."""
        return self.log_file.format(id=run.id, preprocessing=run.preprocessing_id, data=run.input_data_id)

    def run_key(self, run_id: int) -> str:
        return f"{self.name}-{run_id}"


TRAINING = JobKind("training", "TRAINING_ID", "training_stdout_stderr_{id}.log",
                   "TrainingHistoryAttachedFiles", "training-attached-files", "dataset")
INFERENCE = JobKind("inference", "INFERENCE_ID", "inference_stdout_stderr_{id}.log",
                    "InferenceHistoryAttachedFiles", "inference-attached-files", "dataset", api_base="inferences",
                    parent_fields=(("parentIds", "training"), ("inferenceIds", "inference")), output_value=True)
PREPROCESSING = JobKind("preprocessing", "PREPROCESSING_ID", "preproc_stdout_stderr_{preprocessing}_{data}.log",
                        "PreprocessHistoryAttachedFiles", "preprocess-attached-files", "data",
                        parent_fields=(), registers_data=True)

NOTEBOOK = JobKind("notebook", "NOTEBOOK_ID", "notebook_stdout_stderr_{id}.log",
                   "NotebookHistoryAttachedFiles", "notebook-attached-files", "dataset", interactive=True)

KINDS = {k.name: k for k in (TRAINING, INFERENCE, PREPROCESSING, NOTEBOOK)}
