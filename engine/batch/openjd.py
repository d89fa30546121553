"""The batch as an Open Job Description job template, so a render farm runs the same segment groups.

Open Job Description (the open job format AWS Deadline Cloud runs, and `openjd run` runs locally) is
the farm-side engine; this module only describes the work: one step, one task per segment group,
each task running `inbetween batch BATCH --group N` — so a worker loads the model once per group.
The group split is fixed at export (the group size is written into the template); the batch file,
the `inbetween` command and the state folder are job parameters a submitter can change, e.g. to the
farm's path of the same files.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from ..core.files import atomic_write_bytes
from .runner import group_jobs, segment_jobs
from .shots import Batch

STEP_NAME = "InBetween"


def job_template(batch: Batch, group_size: int, template_folder: Path, command: str = "inbetween",
                 state: Path | None = None) -> dict:
    """The template as a dict. Open Job Description joins a PATH parameter's default to the template's
    folder, so the defaults are written relative to `template_folder`."""
    from .runner import default_state_folder

    def relative(path: Path) -> str:
        return os.path.relpath(path, template_folder)

    groups = group_jobs(segment_jobs(batch), group_size)
    args = ["batch", "{{Param.BatchFile}}", "--group", "{{Task.Param.Group}}", "--group-size", str(group_size),
            "--state", "{{Param.StateFolder}}", "--quiet"]

    return {
        "specificationVersion": "jobtemplate-2023-09",
        "name": f"Inbetweener batch {batch.path.stem}",
        "description": f"{len(batch.shots)} shot(s), {sum(len(g) for g in groups)} segment(s) in {len(groups)} task(s) "
                       f"of up to {group_size} segment(s); made by `inbetween batch --export-openjd`.",
        "parameterDefinitions": [
            {"name": "BatchFile", "type": "PATH", "objectType": "FILE", "dataFlow": "IN", "default": relative(batch.path),
             "description": "The shot batch file (YAML); its relative paths resolve from its folder."},
            {"name": "StateFolder", "type": "PATH", "objectType": "DIRECTORY", "dataFlow": "INOUT",
             "default": relative(state or default_state_folder(batch)),
             "description": "Per-segment state records: a rerun skips finished segments and retries failed ones."},
            {"name": "Inbetween", "type": "STRING", "default": command,
             "description": "The inbetween command on the workers (e.g. /opt/inbetweener/.venv/bin/inbetween)."},
        ],
        "steps": [{
            "name": STEP_NAME,
            "parameterSpace": {"taskParameterDefinitions": [
                {"name": "Group", "type": "INT", "range": list(range(len(groups)))},
            ]},
            "script": {"actions": {"onRun": {"command": "{{Param.Inbetween}}", "args": args}}},
        }],
    }


def write_job_template(batch: Batch, path: Path, group_size: int, command: str = "inbetween",
                       state: Path | None = None, overwrite: bool = False) -> Path:
    from ..api import EngineError

    path = Path(path)
    if path.exists() and not overwrite:
        raise EngineError(f"{path} exists; choose another file name or add --overwrite")
    text = yaml.safe_dump(job_template(batch, group_size, path.resolve().parent, command, state), sort_keys=False, width=120)
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


def group_commands(batch: Batch, group_size: int, command: str = "inbetween") -> list[str]:
    """One shell command per group, e.g. for OpenCue's cuecmd (one command per line = one frame)."""
    import shlex

    groups = group_jobs(segment_jobs(batch), group_size)
    return [shlex.join([command, "batch", str(batch.path), "--group", str(i), "--group-size", str(group_size),
                        "--quiet"]) for i in range(len(groups))]
