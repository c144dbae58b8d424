"""cocotb regression of the tile buffer (:class:`mxsf.hw.tilebuf.TileBuffer`).

Drives the write ports, read commands and the output ``ready`` (seeded random stalls)
and compares ``cmd.ready``, ``o.valid`` and every output beat on every cycle with
:func:`mxsf.golden.systolic_model.tilebuf_cycle_model`. The stored codes are then read
back in stored orientation and compared with what was written (the transposed reads
changed nothing). Knobs from the test config: ``stall_prob``, ``idle_prob``.
"""

import cocotb
import numpy as np
from cocotb.simtime import get_sim_time
from cocotb.triggers import ReadOnly, RisingEdge

from mxsf.golden.formats import get_format
from mxsf.golden.systolic_model import tilebuf_cycle_model
from mxsf.hw.tilebuf import TileBuffer
from mxsf.sim.cocotb_lib import (InputCycle, Monitor, Scoreboard, clock_and_reset, get_design, get_seed,
                                 get_test_config, port_width)
from mxsf.sim.packing import LayoutCodec

__all__ = ["load_and_read", "back_to_back", "write_while_reading"]


def _dut_model():
    p = dict(get_design().params)
    return TileBuffer(**p)


def _codecs(buf):
    sig = buf.signature.members
    return {name: LayoutCodec(sig[name].signature.members["payload"].shape)
            for name in ("w_codes", "w_scale", "cmd", "o")}


def _rng(name):
    return np.random.default_rng([get_seed(), sum(map(ord, name))])


def _random_operand(rng, buf):
    f = get_format(buf.fmt)
    codes = rng.integers(0, f.n_codes, size=(buf.rows, buf.cols))
    scales = rng.integers(0, 256, size=(buf.rows // buf.block_size, buf.cols // buf.block_size))
    return codes, scales


def _load_ops(rng, buf, codes, scales):
    """Write operations for a whole operand, in random order: ("c", row, seg, codes) / ("s", tr, tc, s)."""
    m = buf.word_size
    ops = [("c", r, s, [int(x) for x in codes[r, s * m:(s + 1) * m]])
           for r in range(buf.rows) for s in range(buf.cols // m)]
    ops += [("s", a, b, int(scales[a, b])) for a in range(scales.shape[0]) for b in range(scales.shape[1])]
    order = rng.permutation(len(ops))
    return [ops[i] for i in order]


async def _run(dut, name, *, load, commands, stall_prob, idle_prob, extra_writes=()):
    """Load, then issue ``commands`` (list of (transpose, group)); ``extra_writes`` are
    written while the commands run. Returns the output beats taken (decoded)."""
    buf = _dut_model()
    cod = _codecs(buf)
    rng = _rng(name)
    await clock_and_reset(dut)
    clk = dut.clk
    monitored = ["cmd__ready", "o__valid", "o__payload"]
    monitor = Monitor(dut, monitored)
    inputs, outputs = [], []
    load = list(load)
    extra = list(extra_writes)
    cmd_i = 0
    gap = 0
    taken = []
    drain = None
    while drain is None or drain > 0:
        await RisingEdge(clk)
        ports = {"w_codes__valid": 0, "w_codes__payload": 0, "w_scale__valid": 0, "w_scale__payload": 0,
                 "cmd__valid": 0, "cmd__payload": 0, "o__ready": int(rng.random() >= stall_prob)}
        loading = bool(load)
        if load:
            op = load.pop(0)
        elif extra and rng.random() < 0.3:
            op = extra.pop(0)
        else:
            op = None
        if op is not None and op[0] == "c":
            ports["w_codes__valid"] = 1
            ports["w_codes__payload"] = cod["w_codes"].pack({"row": op[1], "seg": op[2], "codes": op[3]})
        elif op is not None:
            ports["w_scale__valid"] = 1
            ports["w_scale__payload"] = cod["w_scale"].pack({"tile_row": op[1], "tile_col": op[2], "scale": op[3]})
        presenting = False
        if not loading and cmd_i < len(commands):
            if gap:
                gap -= 1
            else:
                presenting = True
                t, g = commands[cmd_i]
                ports["cmd__valid"] = 1
                ports["cmd__payload"] = cod["cmd"].pack({"transpose": t, "group": g})
        for port, value in ports.items():
            getattr(dut, port).value = value
        await ReadOnly()
        sample = monitor.sample()
        accepted = None
        if presenting and sample["cmd__ready"] == 1:
            accepted = cmd_i
            cmd_i += 1
            gap = int(rng.integers(1, 4)) if rng.random() < idle_prob else 0
        if sample["o__valid"] == 1 and ports["o__ready"]:
            taken.append(cod["o"].unpack(sample["o__payload"]))
        inputs.append(InputCycle(len(inputs), get_sim_time("ns"), ports, accepted))
        outputs.append(sample)
        if drain is not None:
            drain -= 1
        elif cmd_i == len(commands) and not load:
            stall_prob = 0.0
            drain = max(buf.beats(0), buf.beats(1)) + buf.latency + 4
        if len(inputs) > 50000:
            raise AssertionError(f"{name}: only {cmd_i} of {len(commands)} commands taken")

    def model(cycles, latency):
        rows = []
        for c in cycles:
            def dec(port):
                return cod[port].unpack(c[f"{port}__payload"]) if c[f"{port}__valid"] else None
            wc, ws, cm = dec("w_codes"), dec("w_scale"), dec("cmd")
            rows.append({"w_codes": None if wc is None else (wc["row"], wc["seg"], wc["codes"]),
                         "w_scale": None if ws is None else (ws["tile_row"], ws["tile_col"], ws["scale"]),
                         "cmd": None if cm is None else (cm["transpose"], cm["group"]),
                         "o_ready": c["o__ready"]})
        exp = tilebuf_cycle_model(rows, rows=buf.rows, cols=buf.cols, block_size=buf.block_size,
                                  lanes=buf.lanes, vecs=buf.vecs)
        out = []
        for e in exp:
            beat = e["beat"]
            out.append({"cmd__ready": e["cmd_ready"], "o__valid": e["o_valid"],
                        "o__payload": None if beat is None else cod["o"].pack(
                            {"codes": beat[0], "scale": beat[1], "first": int(beat[2]), "last": int(beat[3])})})
        return out

    board = Scoreboard(model, latency=buf.latency, widths={p: port_width(dut, p) for p in monitored},
                       qualifiers={"o__payload": "o__valid"}, name=get_design().top)
    comparisons = board.check(inputs, outputs)
    dut._log.info(f"{name}: {len(commands)} commands, {len(taken)} beats, {comparisons} comparisons")
    return buf, taken


def _read_back(buf, beats):
    """Assemble stored-orientation beats of groups 0, 1, ... into the matrix and scales."""
    codes = np.zeros((buf.rows, buf.cols), dtype=np.int64)
    scales = np.zeros((buf.rows // buf.block_size, buf.cols // buf.block_size), dtype=np.int64)
    n = buf.beats(False)
    for i, b in enumerate(beats):
        g, t = divmod(i, n)
        r0, k0 = g * buf.vecs, t * buf.lanes
        codes[r0:r0 + buf.vecs, k0:k0 + buf.lanes] = b["codes"]
        for v in range(buf.vecs):
            scales[(r0 + v) // buf.block_size, k0 // buf.block_size] = b["scale"][v]
    return codes, scales


@cocotb.test()
async def load_and_read(dut):
    """Load an operand, read every group in both orientations (random order, random gaps and
    output stalls), then read it back as stored: codes and scales unchanged."""
    buf = _dut_model()
    rng = _rng("load_and_read_data")
    codes, scales = _random_operand(rng, buf)
    cfg = get_test_config()
    commands = [(t, g) for t in (0, 1) for g in range(buf.groups(t))]
    commands = [commands[i] for i in rng.permutation(len(commands))]
    readback = [(0, g) for g in range(buf.groups(False))]
    buf, taken = await _run(dut, "load_and_read", load=_load_ops(rng, buf, codes, scales),
                            commands=commands + readback, stall_prob=cfg.get("stall_prob", 0.3),
                            idle_prob=cfg.get("idle_prob", 0.3))
    n_read = sum(buf.beats(t) for t, _ in commands)
    got_codes, got_scales = _read_back(buf, taken[n_read:])
    assert np.array_equal(got_codes, codes), "codes read back differ from the codes written"
    assert np.array_equal(got_scales, scales), "scales read back differ from the scales written"


@cocotb.test()
async def back_to_back(dut):
    """Commands back to back with no stall: one beat every cycle, no bubble between commands."""
    buf = _dut_model()
    rng = _rng("back_to_back_data")
    codes, scales = _random_operand(rng, buf)
    commands = [(t, g) for g in range(min(buf.groups(0), buf.groups(1))) for t in (1, 0)]
    buf, taken = await _run(dut, "back_to_back", load=_load_ops(rng, buf, codes, scales), commands=commands,
                            stall_prob=0.0, idle_prob=0.0)
    assert len(taken) == sum(buf.beats(t) for t, _ in commands)


@cocotb.test()
async def write_while_reading(dut):
    """Rewrites codes and scales while reads run (a read sees the memory before that cycle's write)."""
    buf = _dut_model()
    rng = _rng("write_while_reading_data")
    codes, scales = _random_operand(rng, buf)
    codes2, scales2 = _random_operand(rng, buf)
    commands = [(int(rng.integers(2)), 0) for _ in range(6)]
    commands = [(t, int(rng.integers(buf.groups(t)))) for t, _ in commands]
    await _run(dut, "write_while_reading", load=_load_ops(rng, buf, codes, scales), commands=commands,
               stall_prob=0.2, idle_prob=0.2, extra_writes=_load_ops(rng, buf, codes2, scales2))
