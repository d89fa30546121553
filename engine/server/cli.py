"""`inbetween serve`: run the local engine server for the desktop app and the Krita plugin.

When it is ready it prints one JSON line on stdout, {"url": ..., "token_file": ..., "pid": ...},
and nothing else on stdout (logs go to stderr), so a parent process can read exactly one line.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

DESCRIPTION = """\
Run the Inbetweener engine as a local HTTP server (the desktop app and the Krita plugin use it).

It listens on 127.0.0.1 only, writes a fresh bearer token to a file only you can read, and prints
one line {"url": ..., "token_file": ..., "pid": ...} when it is ready. Every request must carry
'Authorization: Bearer <token>'. Jobs run one at a time; see docs/server.md for the routes.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=0, help="TCP port (default 0: any free port, printed when ready)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; anything else is reachable from other machines)")
    p.add_argument("--token-file", type=Path, help="where to write the token (default: server-PORT.token in the state folder)")
    p.add_argument("--state-dir", type=Path, help="folder for the token and server.json (default: $INBETWEENER_STATE_DIR "
                   "or your runtime folder)")
    p.add_argument("--no-advertise", action="store_true", help="do not write server.json (clients will not find this server)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also accept requests addressed to NAME:PORT (repeatable; with --host)")
    p.add_argument("--exit-with-stdin", action="store_true",
                   help="stop when stdin closes (used when an app starts the server as its child)")
    p.add_argument("--keep-minutes", type=float, default=30.0, help="how long finished results are kept (default 30)")
    p.add_argument("--keep-jobs", type=int, default=32, help="how many finished jobs are kept (default 32)")
    p.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    p.add_argument("--access-log", action="store_true", help="log every request on stderr")


def register(subparsers) -> argparse.ArgumentParser:
    """Add the `serve` command to the `inbetween` command's subparsers."""
    p = subparsers.add_parser(
        "serve", help="run the local engine server", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    return p


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    from .runner import EngineServer, ServerConfig

    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(), format="inbetween serve: %(levelname)s %(message)s")
    if not 0 <= args.port <= 65535:
        print(f"inbetween serve: error: --port must be 0-65535, got {args.port}", file=sys.stderr)
        return 2
    if args.keep_minutes <= 0 or args.keep_jobs < 1:
        print("inbetween serve: error: --keep-minutes must be > 0 and --keep-jobs >= 1", file=sys.stderr)
        return 2
    config = ServerConfig(
        host=args.host,
        port=args.port,
        token_file=args.token_file,
        state_dir=args.state_dir,
        advertise=not args.no_advertise,
        allow_hosts=tuple(args.allow_host),
        keep_seconds=args.keep_minutes * 60,
        keep_count=args.keep_jobs,
        log_level=args.log_level,
        access_log=args.access_log,
    )
    from ..core.files import DestinationExists, UnsafeWriteError

    try:
        server = EngineServer(config)
    except DestinationExists as exc:
        print(f"inbetween serve: error: --token-file {exc.path} already exists; the server writes a fresh token "
              "there and removes it when it stops, so name a file that does not exist yet", file=sys.stderr)
        return 2
    except UnsafeWriteError as exc:
        print(f"inbetween serve: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"inbetween serve: error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    if not server.loopback:
        print(
            f"inbetween serve: warning: listening on {server.address}, which other machines can reach; "
            "anyone who gets the token can run jobs and read results",
            file=sys.stderr,
        )
    if args.exit_with_stdin:
        server.exit_with_stdin()
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, _terminate)

    def announce(info: dict) -> None:
        sys.stdout.write(json.dumps(info) + "\n")
        sys.stdout.flush()
        print(f"inbetween serve: ready at {info['url']} (token in {info['token_file']})", file=sys.stderr)

    try:
        server.serve(on_ready=announce)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"inbetween serve: error: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.server", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))
