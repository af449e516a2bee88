"""What a finished run leaves to its user: its log and, when asked, output.zip, attached to the run."""

from __future__ import annotations

import os
import zipfile

from ..orm import Run, RunFile
from .kinds import JobKind
from .runtime import RunPaths


def keep_results(db, run: Run, kind: JobKind, store, prefix: str, log_path: str | None, paths: RunPaths) -> None:
    """Attach the log as ``{kind}_stdout_stderr_{id}.log`` and, when ``zip`` is on, ``output.zip``."""
    if log_path and os.path.exists(log_path):
        attach(db, run, store, prefix, kind.log_file_name(run.id), log_path)
    if run.zip_output and os.path.isdir(paths.output):
        zip_path = os.path.join(paths.root, "output.zip")
        zip_directory(paths.output, zip_path)
        attach(db, run, store, prefix, "output.zip", zip_path)


def attach(db, run: Run, store, prefix: str, name: str, path: str) -> None:
    stored = store.put_file(prefix, name, path)
    db.add(RunFile(run_id=run.id, file_name=name, stored_path=stored.stored_path, size=stored.size,
                   is_locked=True, created_by="system", modified_by="system"))


def zip_directory(src: str, dest: str) -> None:
    """Zip a run's output; symlinks are stored as links, never followed out of the directory."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for root, dirs, files in os.walk(src):
            for name in sorted(files):
                path = os.path.join(root, name)
                rel = os.path.relpath(path, src)
                if os.path.islink(path):
                    info = zipfile.ZipInfo(rel)
                    info.external_attr = 0o120777 << 16
                    zf.writestr(info, os.readlink(path))
                else:
                    zf.write(path, rel)
