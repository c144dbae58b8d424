"""cocotb replay of a vector-file stimulus (:mod:`mxsf.sim.vectors`), for cross-checking
the two harnesses: the same stimulus lines, driven from Python one per cycle with the
cocotb cycle convention, and output events recorded in the vector testbench's record
format (cycle, outputs; a payload reads 0 while its valid is low).

Config: ``stim`` (list of hex stimulus files, in order), ``out`` (record file to write),
``cycles`` (cycles to run; idle, all-zero inputs after the last line). Only for designs
without a held input stream (one line a cycle).
"""

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from mxsf.sim.cocotb_lib import clock_and_reset, get_design, get_test_config, read_port

__all__ = ["replay"]


@cocotb.test()
async def replay(dut):
    """Drive every stimulus line, record every output event."""
    cfg = get_test_config()
    design = get_design()
    inputs = [p for p in design.inputs if p.name not in ("clk", "rst")]
    outputs = list(design.outputs)
    out_names = {p.name for p in outputs}
    lines = []
    for path in cfg["stim"]:
        with open(path) as f:
            lines += [int(x, 16) for x in f.read().split()]
    cycles = cfg["cycles"]
    await clock_and_reset(dut)
    records = []
    prev = {}
    for c in range(cycles):
        await RisingEdge(dut.clk)
        word = lines[c] if c < len(lines) else 0
        offset = 0
        for p in inputs:
            getattr(dut, p.name).value = (word >> offset) & ((1 << p.width) - 1)
            offset += p.width
        await ReadOnly()
        values = {p.name: read_port(dut, p.name) for p in outputs}
        event = c == 0
        for p in outputs:
            stream, _, what = p.name.partition("__")
            if what == "valid" and values[p.name] == 1:
                event = True
            elif what == "ready" and values[p.name] == 0:
                event = True
            elif what not in ("valid", "ready", "payload") and prev.get(p.name) != values[p.name] and c > 0:
                event = True
        prev = values
        if event:
            rec, offset = c, 32
            for p in outputs:
                v = values[p.name]
                stream, _, what = p.name.partition("__")
                if what == "payload" and f"{stream}__valid" in out_names and values[f"{stream}__valid"] != 1:
                    v = 0
                rec |= (v if isinstance(v, int) else 0) << offset
                offset += p.width
            records.append(rec)
    width = 32 + sum(p.width for p in outputs)
    digits = 2 * ((width + 7) // 8)
    with open(cfg["out"], "w") as f:
        f.writelines(f"{r:0{digits}x}\n" for r in records)
