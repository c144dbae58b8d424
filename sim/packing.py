"""Fast packing of Amaranth ``data`` layouts to and from the flat integers of Verilog ports.

Amaranth flattens a struct/array payload into one port (``i__payload``); a testbench
that drives hundreds of thousands of beats needs the bit offsets of every leaf field
once, then plain integer shifts. :class:`LayoutCodec` reads the offsets from the
layout (so it cannot drift from the hardware) and packs nested dicts/lists.
"""

from __future__ import annotations

from amaranth.hdl import Shape
from amaranth.lib import data

from mxsf.hw.layouts import Encoding

__all__ = ["LayoutCodec"]


class LayoutCodec:
    """Pack/unpack values of an Amaranth layout to a flat integer.

    A value is an int for a plain field, a dict for a struct, a list for an array;
    an int is also accepted for a struct or array (its raw bits). :meth:`unpack`
    returns the nested form.
    """

    def __init__(self, layout):
        self.layout = layout
        self.width = Shape.cast(layout).width
        self._spec = self._compile(layout)

    def _compile(self, layout):
        if isinstance(layout, type) and issubclass(layout, Encoding):
            return ("int", Shape.cast(layout).width, None)      # one encoded number: its bits
        if isinstance(layout, type) and issubclass(layout, data.Struct):
            layout = data.Layout.cast(layout)
        width = Shape.cast(layout).width
        if isinstance(layout, data.ArrayLayout):
            elem = self._compile(layout.elem_shape)
            step = Shape.cast(layout.elem_shape).width
            return ("array", width, [(i * step, elem) for i in range(layout.length)])
        if isinstance(layout, data.Layout):
            return ("struct", width, {name: (f.offset, self._compile(f.shape)) for name, f in layout})
        return ("int", width, None)

    def pack(self, value) -> int:
        return self._pack(self._spec, value)

    def _pack(self, spec, value) -> int:
        kind, width, body = spec
        if kind == "int" or not isinstance(value, (dict, list, tuple)):
            return int(value) & ((1 << width) - 1)   # raw bits are accepted for any field
        if kind == "array":
            out = 0
            for (off, sub), v in zip(body, value):
                out |= self._pack(sub, v) << off
            return out
        out = 0
        for name, v in value.items():
            off, sub = body[name]
            out |= self._pack(sub, v) << off
        return out

    def unpack(self, bits: int, depth: int | None = None):
        """Nested dicts/lists of ints; below ``depth`` levels, fields stay raw ints."""
        return self._unpack(self._spec, int(bits), depth)

    def _unpack(self, spec, bits: int, depth):
        kind, width, body = spec
        if kind == "int" or depth == 0:
            return bits & ((1 << width) - 1)
        nxt = None if depth is None else depth - 1
        if kind == "array":
            return [self._unpack(sub, bits >> off, nxt) for off, sub in body]
        return {name: self._unpack(sub, bits >> off, nxt) for name, (off, sub) in body.items()}
