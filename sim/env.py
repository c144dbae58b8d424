"""Environment variables that carry a run's inputs into the cocotb simulator process."""

__all__ = ["CONFIG_ENV", "DESIGN_ENV", "WAVES_ENV"]

#: The test configuration (JSON object).
CONFIG_ENV = "MXSF_TEST_CONFIG"
#: :meth:`mxsf.gen.built.BuiltDesign.to_json` of the design under test.
DESIGN_ENV = "MXSF_DESIGN"
#: The waveform path (empty when waves are off).
WAVES_ENV = "MXSF_WAVES_FILE"
