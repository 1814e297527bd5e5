"""python -m labdata list | info NAME | fetch NAME [--split S ...]"""

from __future__ import annotations

import argparse
import json
import sys

from . import LabDataError, datasets, fetch, info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labdata", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="the datasets labdata knows")
    p_info = sub.add_parser("info", help="sizes, sources and offline availability of one dataset")
    p_info.add_argument("name")
    p_fetch = sub.add_parser("fetch", help="download/decode a dataset into the cache (for offline use)")
    p_fetch.add_argument("name")
    p_fetch.add_argument("--split", action="append", help="only these splits (repeatable)")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "list":
            for name in datasets():
                print(f"{name:10s} {info(name)['description']}")
        elif args.cmd == "info":
            print(json.dumps(info(args.name), indent=2))
        elif args.cmd == "fetch":
            for data in fetch(args.name, args.split):
                print(data)
    except LabDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
