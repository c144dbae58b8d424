"""Find the repeated modules of a Verilog design, so each is synthesised once.

Amaranth writes one Verilog module per *instance* (``top.pe0_0``, ``top.pe0_1``, ...,
each with its own copies of the submodules), even when the instances are identical.
:func:`dedup_verilog` gives every module a signature, bottom-up: its text with its own
name blanked and each instantiated module replaced by that module's signature. Modules
with equal signatures are the same hardware; one copy of each is kept and every
instantiation points to it.

Modules that occur more than once in the elaborated design *and* have a clock input
(a registered unit, such as a PE of an array) are marked to keep their hierarchy; the
flow flattens everything else (so the small combinational helpers inside a PE are
still optimised together with it). Only the outermost repeated clocked modules are
kept: a repeated unit inside a kept one is flattened into it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from collections.abc import Mapping

__all__ = ["HierPlan", "dedup_verilog", "split_modules"]

_MODULE_RE = re.compile(r"^module\s+(\\\S+|[A-Za-z_][A-Za-z0-9_$]*)\s*\((.*?)^endmodule\b",
                        re.M | re.S)
_INST_RE = re.compile(r"^\s*(\\\S+|[A-Za-z_][A-Za-z0-9_$]*)\s+(?:#\s*\(.*?\)\s*)?"
                      r"(\\\S+|[A-Za-z_][A-Za-z0-9_$]*)\s*\(", re.M | re.S)
#: Generated names that differ between equal instances: Yosys's ``$auto$`` names and
#: Amaranth's ``port$<id>$<n>`` (a port driven by an expression): renumbered per module.
_AUTO_RE = re.compile(r"\\\$auto\$\S*|\\port\$\d+\$\d+")
_PORT_RE = re.compile(r"\\port\$\d+\$\d+")
_HEADER_RE = re.compile(r"^(module\s+@SELF@\s*\()([^)]*)(\)\s*;)", re.M)


@dataclass(frozen=True)
class HierPlan:
    """Result of :func:`dedup_verilog`.

    Attributes
    ----------
    verilog : str
        The design with one module per distinct piece of hardware.
    keep : tuple of str
        Modules (names in ``verilog``) to keep as separate, once-synthesised modules.
    instances : dict
        Module of ``keep`` -> number of instances in the elaborated design.
    modules_before, modules_after : int
        Module count of the original and of the deduplicated text.
    """

    verilog: str
    keep: tuple[str, ...]
    instances: Mapping[str, int]
    modules_before: int
    modules_after: int


def split_modules(text: str) -> dict[str, str]:
    """Module name (as written, ``\\`` included for escaped names) -> full module text."""
    return {m.group(1): m.group(0) for m in _MODULE_RE.finditer(text)}


def _children(body: str, names: set[str], own: str) -> list[str]:
    out = []
    for m in _INST_RE.finditer(body):
        name = m.group(1)
        if name in names and name != own:
            out.append(name)
    return out


def _ref(name: str) -> re.Pattern[str]:
    # An escaped identifier ends at white space; a plain one at a non-identifier character.
    if name.startswith("\\"):
        return re.compile(re.escape(name) + r"(?=\s)")
    return re.compile(r"(?<![A-Za-z0-9_$\\])" + re.escape(name) + r"(?![A-Za-z0-9_$])")


def _plain(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name.lstrip("\\"))


def _port_map(module: str, representative: str) -> dict[str, str]:
    """Generated port names (``port$<id>$<n>``) of ``module`` -> those of its equal
    ``representative``, paired by order of first use after the header (the header's order
    differs between equal instances, their bodies do not)."""
    if module is representative:
        return {}
    pairs = []
    for text in (module, representative):
        header, rest = text.split(";", 1)
        ports = set(_PORT_RE.findall(header))
        pairs.append([t for t in dict.fromkeys(_PORT_RE.findall(rest)) if t in ports])
    return {a: b for a, b in zip(*pairs) if a != b}


def dedup_verilog(text: str, top: str) -> HierPlan:
    """Merge identical modules of ``text`` (top module ``top``) and choose those to keep.

    Raises
    ------
    ValueError
        If ``top`` is not a module of ``text`` or the hierarchy has a cycle.
    """
    modules = split_modules(text)
    top_key = top if top in modules else "\\" + top if "\\" + top in modules else None
    if top_key is None:
        raise ValueError(f"top module {top!r} not found in the Verilog")
    names = set(modules)
    children = {name: _children(body, names, name) for name, body in modules.items()}

    signature: dict[str, str] = {}
    visiting: set[str] = set()

    def sign(name: str) -> str:
        if name in signature:
            return signature[name]
        if name in visiting:
            raise ValueError(f"module hierarchy has a cycle through {name!r}")
        visiting.add(name)
        body = _ref(name).sub("@SELF@", modules[name], count=1)
        # Amaranth lists the ports of equal instances in different orders (instantiations
        # connect them by name, so the order does not matter): sort the header's list.
        body = _HEADER_RE.sub(lambda m: m.group(1) + ", ".join(sorted(p.strip() for p in m.group(2).split(",")))
                              + m.group(3), body, count=1)
        # Generated names are numbered globally: renumber them per module.
        auto: dict[str, str] = {}
        body = _AUTO_RE.sub(lambda m: auto.setdefault(m.group(0), f"@AUTO{len(auto)}@"), body)
        for child in sorted(set(children[name]), key=len, reverse=True):
            body = _ref(child).sub("@" + sign(child) + "@", body)
        visiting.discard(name)
        signature[name] = hashlib.sha256(body.encode()).hexdigest()
        return signature[name]

    reachable: list[str] = []
    stack = [top_key]
    while stack:
        name = stack.pop()
        if name in reachable:
            continue
        reachable.append(name)
        stack.extend(children[name])
    for name in reachable:
        sign(name)

    representative: dict[str, str] = {}
    for name in sorted(reachable):
        representative.setdefault(signature[name], name)
    canon = {name: representative[signature[name]] for name in reachable}

    # Instance counts of each distinct module in the elaborated tree.
    counts: dict[str, int] = {}

    def count(name: str, times: int) -> None:
        counts[canon[name]] = counts.get(canon[name], 0) + times
        for child in children[name]:
            count(child, times)

    count(top_key, 1)

    def clocked(name: str) -> bool:
        header = modules[name].split(";", 1)[0]
        return re.search(r"[(,\s]clk\s*[,)]", header) is not None

    keep: list[str] = []

    def choose(name: str) -> None:
        c = canon[name]
        if c != canon[top_key] and counts[c] > 1 and clocked(c):
            if c not in keep:
                keep.append(c)
            return
        for child in children[name]:
            choose(child)

    choose(top_key)

    # Rewrite: one copy per signature, references renamed to the representative, and
    # kept modules given plain names (<top>__<path>) that every tool accepts.
    rename = {c: _plain(c) for c in keep}
    out = []
    for name in reachable:
        if canon[name] != name:
            continue
        body = modules[name]
        for child in sorted(set(children[name]), key=len, reverse=True):
            target = canon[child]
            body = _ref(child).sub(lambda _m, t=target: rename.get(t, t), body)
            # the representative's generated port names replace the merged module's
            for mine, theirs in _port_map(modules[child], modules[target]).items():
                body = re.sub(re.escape(mine) + r"(?=\s)", lambda _m, t=theirs: t, body)
        if name in rename:
            body = _ref(name).sub(rename[name], body, count=1)
        out.append(body)
    verilog = "\n\n".join(out) + "\n"
    return HierPlan(verilog=verilog, keep=tuple(rename[c] for c in keep),
                    instances={rename[c]: counts[c] for c in keep},
                    modules_before=len(modules), modules_after=len(out))
