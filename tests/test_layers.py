"""The layer rules of docs/ARCHITECTURE.md: no module imports a layer above its own.

Each top-level folder is one layer of the ``mxsf`` namespace. A module may import its
own layer and the layers listed for it below; the test reads every module's imports
(``import x``, ``from x import y``, relative imports and imports inside functions) from
its source, so the plan cannot rot silently.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: layer -> the other layers it may import (its own is always allowed).
ALLOWED: dict[str, frozenset[str]] = {
    "golden": frozenset(),
    "hw": frozenset({"golden"}),
    "studies": frozenset({"golden"}),
    "gen": frozenset({"golden", "hw"}),
    "sim": frozenset({"golden", "hw", "gen"}),
    "synth": frozenset({"golden", "gen", "studies"}),
    "cli": frozenset({"golden", "hw", "gen", "sim", "synth", "studies"}),
}
#: third-party packages a layer must not import (golden and studies stay NumPy-only).
FORBIDDEN_PACKAGES: dict[str, frozenset[str]] = {
    "golden": frozenset({"amaranth", "cocotb", "cocotb_tools", "matplotlib"}),
    "studies": frozenset({"amaranth", "cocotb", "cocotb_tools"}),
    "hw": frozenset({"cocotb", "cocotb_tools"}),
    "gen": frozenset({"cocotb", "cocotb_tools"}),
    "synth": frozenset({"cocotb", "cocotb_tools"}),
}


def imported_modules(source: str, module: str, is_package: bool) -> list[str]:
    """Absolute names of every module ``source`` imports (``module`` is its dotted name)."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names.append(prefix)
            names += [f"{prefix}.{a.name}" for a in node.names]   # `from mxsf import sim`
    return names


def layer_violations(layer: str, source: str, module: str, is_package: bool = False) -> list[str]:
    """The imports of ``source`` (a module of ``layer``) that break the rules."""
    bad = []
    for name in imported_modules(source, module, is_package):
        parts = name.split(".")
        if parts[0] == "mxsf" and len(parts) > 1 and parts[1] in ALLOWED:
            target = parts[1]
            if target != layer and target not in ALLOWED[layer]:
                bad.append(f"{module} imports {name} (layer {target})")
        elif parts[0] in FORBIDDEN_PACKAGES.get(layer, ()):
            bad.append(f"{module} imports {name}")
    return sorted(set(bad))


def layer_modules():
    for layer in ALLOWED:
        for path in sorted((ROOT / layer).rglob("*.py")):
            rel = path.relative_to(ROOT / layer).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            yield layer, path, ".".join(["mxsf", layer, *parts]), path.name == "__init__.py"


def test_every_layer_folder_exists_and_is_packaged():
    import tomllib

    dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for layer in ALLOWED:
        assert (ROOT / layer / "__init__.py").is_file(), layer
        assert dirs[f"mxsf.{layer}"] == layer
    assert sorted(p.name for p in (ROOT / "mxsf").glob("*.py")) == ["__init__.py", "__main__.py"]


@pytest.mark.parametrize("layer", list(ALLOWED))
def test_layer_imports_only_lower_layers(layer):
    bad = []
    for lay, path, module, is_pkg in layer_modules():
        if lay == layer:
            bad += layer_violations(layer, path.read_text(), module, is_pkg)
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("source", [
    "import mxsf.sim\n",
    "from mxsf.sim.run import run_cocotb\n",
    "from mxsf import sim\n",
    "def f():\n    from mxsf.sim import regression\n",
    "from ..sim import run\n",
])
def test_a_synth_module_importing_sim_is_caught(source):
    assert layer_violations("synth", source, "mxsf.synth.flow")


def test_the_rule_catches_a_real_edit(tmp_path):
    """A deliberate `import mxsf.sim` added to an actual synth module fails the rule."""
    flow = (ROOT / "synth" / "flow.py").read_text()
    assert not layer_violations("synth", flow, "mxsf.synth.flow")
    assert layer_violations("synth", flow + "\nimport mxsf.sim\n", "mxsf.synth.flow") == [
        "mxsf.synth.flow imports mxsf.sim (layer sim)"]
    assert layer_violations("hw", "import cocotb\n", "mxsf.hw.pe") == ["mxsf.hw.pe imports cocotb"]
    assert layer_violations("golden", "from mxsf.hw import pe\n", "mxsf.golden.x")
    assert not layer_violations("cli", "from mxsf.sim import run\n", "mxsf.cli.hw")
