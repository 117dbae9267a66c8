"""``python -m harness``: command-line entry points.

python -m harness info [--board NAME]     build, boot, handshake, print rpc.info
python -m harness trace [--full] [--chunks] FILE
                                          print a wire trace with its frames decoded
python -m harness boards scan             connected serial ports, with boards.yaml snippets
python -m harness boards list [NAME...]   configured boards and whether each can run here

Exit status: 0 on success, 1 when the harness failed (or the trace is missing or corrupt),
2 for a wrong command line, 3 when `boards scan` finds no port or a board named to
`boards list` cannot run here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from harness.boards_cli import add_boards_command
from harness.connect import connect
from harness.errors import HarnessError
from harness.trace import read_trace
from harness.trace_format import format_trace


def _info(args: argparse.Namespace) -> int:
    with connect(args.board, boards_file=args.boards_file) as client:
        info = json.loads(str(client.call("rpc.info")))
        print(f"board {args.board}: session {client.session_id:#06x}")
        for key, value in info.items():
            print(f"  {key:17} {value}")
        for line in client.logs:
            print(f"  log: {line}")
    return 0


def _trace(args: argparse.Namespace) -> int:
    # Read (and so validate) the whole file before printing, so a corrupt trace fails with
    # one clear error instead of half a listing.
    trace = read_trace(Path(args.file))
    try:
        for line in format_trace(trace, full=args.full, chunks=args.chunks):
            print(line)
        sys.stdout.flush()
    except BrokenPipeError:
        # `... | head`: the reader has seen enough. Point stdout at /dev/null so the flush at
        # interpreter exit does not fail a second time (the recipe of Python's signal docs).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="boot a board, handshake and print rpc.info")
    info.add_argument("--board", default="host")
    info.add_argument("--boards-file", default=None)
    info.set_defaults(run=_info)
    trace = sub.add_parser(
        "trace", help="print a wire trace (wire-trace.jsonl) with its frames decoded"
    )
    trace.add_argument("file", help="the trace file, e.g. <test folder>/device/wire-trace.jsonl")
    trace.add_argument(
        "--full", action="store_true", help="every byte of every chunk, not a 64-byte preview"
    )
    trace.add_argument(
        "--chunks",
        action="store_true",
        help="every read and write as recorded, instead of back-to-back ones merged",
    )
    trace.set_defaults(run=_trace)
    add_boards_command(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
