"""`inbetween batch SHOTS.yaml`: many shots at once, locally or as a render-farm job.

    inbetween batch shots.yaml                          # run every segment here, resumable
    inbetween batch shots.yaml --export-openjd job.yaml # the same work as an Open Job Description job
    inbetween batch shots.yaml --group 3 --group-size 4 # one farm task: the 4th group of 4 segments
    inbetween batch shots.yaml --print-commands         # one command per group (e.g. for OpenCue cuecmd)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
EXIT_CANCELLED = 130


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("batch", help="in-between the shots of a batch file (YAML)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("batch_file", metavar="SHOTS.yaml")
    p.add_argument("--state", help="state folder (default: SHOTS.state beside the batch file)")
    p.add_argument("--group-size", type=int, default=4, help="segments per farm task (default 4)")
    p.add_argument("--group", type=int, help="run only this group (0-based), as a farm task does")
    p.add_argument("--export-openjd", metavar="JOB.yaml", help="write an Open Job Description template and exit")
    p.add_argument("--command", default="inbetween", help="the inbetween command on farm workers (default: inbetween)")
    p.add_argument("--print-commands", action="store_true", help="print one command per group and exit")
    p.add_argument("--overwrite", action="store_true", help="with --export-openjd: replace an existing template")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def run(args: argparse.Namespace) -> int:
    from ..api import Cancelled, EngineError
    from ..core.planning import PlanningError
    from .openjd import group_commands, write_job_template
    from .runner import BatchRunner, default_state_folder, group_jobs, segment_jobs
    from .shots import load_batch
    from .state import BatchState

    try:
        batch = load_batch(args.batch_file)
        state_folder = Path(args.state).expanduser().resolve() if args.state else default_state_folder(batch)
        groups = group_jobs(segment_jobs(batch), args.group_size)
        if args.export_openjd:
            path = write_job_template(batch, Path(args.export_openjd), args.group_size, args.command, state_folder,
                                      overwrite=args.overwrite)
            print(f"inbetween batch: wrote {path} ({len(groups)} task(s)); run it locally with "
                  f"`openjd run {path} --step InBetween` or submit it to your farm", file=sys.stderr)
            return 0
        if args.print_commands:
            print("\n".join(group_commands(batch, args.group_size, args.command)))
            return 0
        if args.group is not None and not 0 <= args.group < len(groups):
            raise EngineError(f"--group {args.group} does not exist: this batch has groups 0-{len(groups) - 1}")
        jobs = groups[args.group] if args.group is not None else [job for group in groups for job in group]
    except (EngineError, PlanningError, OSError) as exc:
        print(f"inbetween batch: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT

    from ..cli import ProgressBar

    bar = ProgressBar(enabled=not args.quiet and sys.stderr.isatty())
    try:
        report = BatchRunner(batch, BatchState(state_folder)).run(jobs, progress=bar)
    except (Cancelled, KeyboardInterrupt):
        bar.close()
        print("inbetween batch: interrupted; finished segments are kept, rerun to continue", file=sys.stderr)
        return EXIT_CANCELLED
    bar.close()
    for warning in report.warnings:
        print(f"inbetween batch: warning: {warning}", file=sys.stderr)
    for failure in report.failed:
        print(f"inbetween batch: failed: {failure}", file=sys.stderr)
    print(f"inbetween batch: {len(report.done)} segment(s) drawn, {len(report.skipped)} already finished, "
          f"{len(report.failed)} failed (state in {state_folder})", file=sys.stderr)
    return EXIT_FAILED if report.failed else 0
