"""``python -m harness``: command-line entry points.

python -m harness info [--board NAME]     build, boot, handshake, print rpc.info
"""

from __future__ import annotations

import argparse
import json
import sys

from harness.connect import connect
from harness.errors import HarnessError


def _info(args: argparse.Namespace) -> int:
    with connect(args.board, boards_file=args.boards_file) as client:
        info = json.loads(str(client.call("rpc.info")))
        print(f"board {args.board}: session {client.session_id:#06x}")
        for key, value in info.items():
            print(f"  {key:17} {value}")
        for line in client.logs:
            print(f"  log: {line}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="boot a board, handshake and print rpc.info")
    info.add_argument("--board", default="host")
    info.add_argument("--boards-file", default=None)
    info.set_defaults(run=_info)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
