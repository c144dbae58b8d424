"""The ``mxsf`` command line: one module per command group, each with ``register(subparsers)``.

Every command reports bad input as one line on stderr and exits 2 (no traceback).
"""

from __future__ import annotations

import sys

from . import accuracy, demo, hw, infer, quantize, synth
from .common import CLIError, Parser, first_line

__all__ = ["main", "build_parser", "COMMAND_MODULES"]

COMMAND_MODULES = (quantize, hw, synth, accuracy, demo, infer)
"""The command groups, in the order ``mxsf --help`` lists them."""


def build_parser() -> Parser:
    p = Parser(prog="mxsf", description="Generate, test and measure MX (microscaling) datapaths.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for module in COMMAND_MODULES:
        module.register(sub)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except (CLIError, ValueError) as e:
        print(f"mxsf: error: {first_line(e)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `mxsf formats | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("mxsf: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
