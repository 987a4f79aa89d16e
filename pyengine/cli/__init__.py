"""The ``pyengine`` command line: train, evaluate, info, bench.

    pyengine train --model simple_cnn --dataset fashion-mnist --epochs 3
    pyengine evaluate checkpoints/simple_cnn.pe
    pyengine info
    pyengine bench --quick
"""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    from . import bench, info, train
    ap = argparse.ArgumentParser(prog="pyengine", description="pyengine: a CNN engine with "
                                 "hand-written kernels.")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    train.add_parsers(sub)
    info.add_parser(sub)
    bench.add_parser(sub)
    return ap


def main(argv=None) -> int:
    """Entry point of ``pyengine`` and ``python -m pyengine``; returns the exit status."""
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.command is None:
        ap.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, RuntimeError, ImportError, OSError) as exc:
        print(f"pyengine {args.command}: error: {exc}", file=sys.stderr)
        return 1
