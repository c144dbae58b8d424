"""Energy per MAC from gate-level activity: the glue between ``mxsf.synth`` and
``mxsf.sim`` (which do not import each other), used by ``mxsf synth`` and
``mxsf compare`` with a cell library that has power tables.

:func:`measure_energy` takes a synthesis job and its report, simulates the mapped
netlist on a real workload (:func:`mxsf.sim.gate_activity.pe_workload`: dot products of
tensors from the accuracy study's distributions, quantized by the golden model, one
beat a cycle), checks every output cycle against the golden model, annotates the pin
activity in OpenSTA and returns power and pJ/MAC. It is a module-level function (with
keyword settings bound by :func:`functools.partial`), so process pools and Dask workers
can run it. The simulation is cached in the report's work folder per netlist and
workload (``activity-<key>.tcl``/``.json``); the OpenSTA power step runs every time.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

__all__ = ["ACTIVITY_DESIGNS", "measure_energy"]

#: Designs with a gate-level workload (others get the vectorless figure only).
ACTIVITY_DESIGNS = ("pe", "bf16-pe", "array")


def _key(job, report, settings: dict) -> str:
    """Identity of a gate-level simulation: the netlist, the workload and the code that
    simulates it (not the clock: activity is counted per cycle)."""
    import mxsf.sim.gate_activity as ga

    netlist = (Path(report.work_dir) / "mapped.v").read_bytes()
    text = "\0".join([hashlib.sha256(netlist).hexdigest(), report.top, job.design,
                      json.dumps(job.params, sort_keys=True), json.dumps(settings, sort_keys=True),
                      Path(ga.__file__).read_text(), Path(__file__).read_text()])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def measure_energy(job, report, *, dots: int = 8, k: int = 256, distribution: str = "gaussian",
                   seed: int = 0, cache: bool = True, gate_sim: str = "auto") -> dict | None:
    """Activity-based power and pJ/MAC of ``report`` (a :class:`SynthReport` of ``job``).

    ``gate_sim`` picks the gate-level simulator (``auto``, ``icarus`` or ``verilator``;
    see :func:`mxsf.sim.gate_activity.simulate_netlist`).

    The gate-level simulation (and its golden check) is cached per netlist and workload
    (``activity-<key>.tcl`` and ``.json`` in the report's work folder); OpenSTA then
    computes the power at the report's analysis clock on every call.

    Returns None when the library has no power tables or cell models, or the design has
    no workload (:data:`ACTIVITY_DESIGNS`).

    Raises
    ------
    mxsf.sim.gate_activity.GateLevelMismatch
        The netlist's results differ from the golden model.
    mxsf.sim.gate_activity.GateLevelError, mxsf.synth.SynthError
        The simulator or OpenSTA failed.
    """
    from mxsf.gen.registry import get_design_spec
    from mxsf.sim.gate_activity import activity_tcl, array_workload, pe_workload, run_workload
    from mxsf.synth.cellsim import verilator_cell_models
    from mxsf.synth.energy import activity_power, pj_per_mac
    from mxsf.studies.accuracy import make_distribution
    from mxsf.synth.libraries import get_library

    library = get_library(report.library)
    if not library.power or library.cell_models is None or job.design not in ACTIVITY_DESIGNS:
        return None
    work = Path(report.work_dir)
    settings = {"dots": dots, "k": k, "distribution": distribution, "seed": seed, "gate_sim": gate_sim}
    key = _key(job, report, settings)
    activity_file = f"activity-{key}.tcl"
    stats_path = work / f"activity-{key}.json"
    stats = None
    if cache and (work / activity_file).is_file():
        try:
            stats = json.loads(stats_path.read_text())
        except (OSError, ValueError):
            stats = None
    if stats is None:
        latency = int(get_design_spec(job.design).instantiate(**job.params).latency)
        if job.design == "array":
            workload = array_workload(job.params, sample=make_distribution, tiles=max(1, dots // 4), k=k,
                                      distribution=distribution, seed=seed, latency=latency)
        else:
            workload = pe_workload(job.design, job.params, sample=make_distribution, dots=dots, k=k,
                                   distribution=distribution, seed=seed, latency=latency)
        vl_models = verilator_cell_models(library, work.parent) if gate_sim != "icarus" else None
        sim, compared = run_workload(work, top=report.top, cell_models=str(library.cell_models),
                                     workload=workload, clock_ns=report.clock_ns,
                                     tag=f"gate-{key}", simulator=gate_sim,
                                     verilator_cell_models=vl_models)
        tcl, pins = activity_tcl(work / "mapped.json", report.top, sim)
        _write(work / activity_file, tcl)
        stats = {"workload": workload.description, "cycles": workload.cycles,
                 "utilisation": round(workload.utilisation, 6), "results_checked": compared,
                 "pins": pins, "sim_time_s": sim.sim_time_s, "simulator": sim.simulator}
        _write(stats_path, json.dumps(stats, indent=1) + "\n")
    started = time.perf_counter()
    power = activity_power(report, activity_file, tag=f"activity-power-{key}")
    sta_time = time.perf_counter() - started
    energy = pj_per_mac(power.total_w, report.clock_ns, job.macs, stats["utilisation"])
    return {
        **stats, "clock_ns": report.clock_ns,
        "power_mw": round(1e3 * power.total_w, 6),
        "power_internal_mw": round(1e3 * power.internal_w, 6),
        "power_switching_mw": round(1e3 * power.switching_w, 6),
        "power_leakage_mw": round(1e3 * power.leakage_w, 9),
        "groups_mw": {g: [round(1e3 * v, 6) for v in vals] for g, vals in power.groups.items()},
        "pj_per_mac": None if energy is None else round(energy, 4),
        "sta_time_s": round(sta_time, 3),
    }


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
