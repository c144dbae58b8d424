"""cocotb test modules, run inside the simulator by :func:`mxsf.sim.run.run_cocotb`."""

__all__: list[str] = []
