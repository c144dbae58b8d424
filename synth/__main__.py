"""``python -m mxsf.synth VERILOG TOP``: synthesise and print the Markdown report."""

import sys

from .flow import _main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(_main())
