"""Fast lifting of call results straight into the typed dataclasses.

wasmtime-py's generic `convert_from_c` re-reads every record's field list and every option's
payload type from the C API for each value, and decides per value whether a variant is "tagged":
a 1000-line sync batch took ~0.7 ms per line, which alone would make a 100,000-line first sync
~50x slower than the Rust host. Walking the C values through ctypes structures still cost
~55 us per line. The component's types do not change, so this module walks them once into a
plan (one closure per type) that reads the C values as raw memory (layout offsets taken from
wasmtime-py's own ctypes declarations, not hard-coded) and builds the dataclasses directly.
The result equals `types.from_wit(<wasmtime-py's value>)` (tests/test_contract.py checks it).
"""

from __future__ import annotations

import codecs
import ctypes
import dataclasses
import importlib.metadata
import os
import struct
import typing
from typing import Any, Callable, Optional, Union

import wasmtime._ffi as ffi
from wasmtime.component import (
    S32,
    U16,
    U32,
    U64,
    Bool,
    EnumType,
    ListType,
    OptionType,
    RecordType,
    ResultType,
    String,
    VariantType,
)
from wasmtime.component._enter import enter_wasm

from . import types as t

# The lifter reads wasmtime-py's C values with the layout of the version it was checked against
# (tests/test_contract.py compares it with wasmtime-py's own conversion). Any other version, or
# ERP_BANK_SYNC_GENERIC_LIFT=1, takes wasmtime-py's public, slower path instead.
VERIFIED_WASMTIME = "50.0.1"
ENABLED = (
    importlib.metadata.version("wasmtime") == VERIFIED_WASMTIME
    and not os.environ.get("ERP_BANK_SYNC_GENERIC_LIFT")
)

# A plan reads the value whose C address it is given. The process memory is seen through one
# read-only buffer, so reading a field is a struct unpack and a slice (no ctypes call per value:
# `ctypes.string_at` alone cost more than the rest). The values are wasmtime's, alive until
# `call` frees them after the lift.
Plan = Callable[[int], Any]
Root = Callable[[Any], Any]

MEM = memoryview((ctypes.c_char * (1 << 47)).from_address(0)).cast("B").toreadonly()
_VAL = ffi.wasmtime_component_val_t
VAL_SIZE = ctypes.sizeof(_VAL)
OF = _VAL.of.offset  # the payload union inside a value
ENTRY_SIZE = ctypes.sizeof(ffi.wasmtime_component_valrecord_entry)
ENTRY_VAL = ffi.wasmtime_component_valrecord_entry.val.offset
VARIANT_VAL = ffi.wasmtime_component_valvariant.val.offset
RESULT_VAL = ffi.wasmtime_component_valresult.val.offset
_vec = struct.Struct("=QQ").unpack_from  # (size, data) of a string, list or record
_ptr = struct.Struct("=Q").unpack_from
_utf8 = codecs.utf_8_decode
assert ctypes.sizeof(ctypes.c_void_p) == 8 == ctypes.sizeof(ctypes.c_size_t), "64-bit only"
assert ffi.wasm_byte_vec_t.size.offset == 0 and ffi.wasmtime_component_vallist.size.offset == 0


def _text(addr: int) -> str:
    size, data = _vec(MEM, addr + OF)
    return _utf8(MEM[data : data + size], "strict", True)[0] if size else ""


def plan(ty: Any, hint: Any) -> Plan:
    """A reader of a value of WIT type `ty` as the Python `hint`."""
    origin = typing.get_origin(hint)
    if origin is Union:  # Optional[X]: the option's payload hint
        hint = [a for a in typing.get_args(hint) if a is not type(None)][0]
        origin = typing.get_origin(hint)
    if isinstance(ty, (String, EnumType)):
        return _text
    if isinstance(ty, Bool):
        return lambda addr: MEM[addr + OF] != 0
    for kind, fmt in ((U16, "=H"), (U32, "=I"), (U64, "=Q"), (S32, "=i")):
        if isinstance(ty, kind):
            read = struct.Struct(fmt).unpack_from
            return lambda addr, read=read: read(MEM, addr + OF)[0]
    if isinstance(ty, OptionType):
        inner = plan(ty.payload, hint)

        def lift_option(addr: int) -> Any:
            (p,) = _ptr(MEM, addr + OF)
            return inner(p) if p else None

        return lift_option
    if isinstance(ty, ListType) and origin is list:
        (item_hint,) = typing.get_args(hint)
        item = plan(ty.element, item_hint)

        def lift_list(addr: int) -> list:
            size, data = _vec(MEM, addr + OF)
            return [item(data + i * VAL_SIZE) for i in range(size)]

        return lift_list
    if isinstance(ty, RecordType) and dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        wit_fields = ty.fields
        names = [name.replace("-", "_") for name, _ in wit_fields]
        if [f.name for f in dataclasses.fields(hint)] != names:
            raise TypeError(f"{hint.__name__} does not mirror the WIT record's fields {names}")
        readers = [
            (i * ENTRY_SIZE + ENTRY_VAL, plan(fty, hints[n]))
            for i, (n, (_, fty)) in enumerate(zip(names, wit_fields))
        ]
        count = len(readers)
        cls = hint

        def lift_record(addr: int) -> Any:
            size, data = _vec(MEM, addr + OF)
            assert size == count
            return cls(*[read(data + at) for at, read in readers])

        return lift_record
    if isinstance(ty, VariantType) and hint is t.SyncProgress:

        def lift_progress(addr: int) -> t.SyncProgress:
            (p,) = _ptr(MEM, addr + OF + VARIANT_VAL)
            return t.SyncProgress(_text(addr) == "done", _text(p))

        return lift_progress
    if isinstance(ty, ResultType):
        ok = plan(ty.ok, hint) if ty.ok is not None else None
        err = ty.err

        def lift_result(addr: int) -> Any:
            (p,) = _ptr(MEM, addr + OF + RESULT_VAL)
            if MEM[addr + OF]:  # is_ok
                return ok(p) if ok and p else None
            # Errors are rare: wasmtime-py's own conversion gives the Variant.
            return _generic(err, p)

        return lift_result
    return lambda addr: _generic(ty, addr)


def _generic(ty: Any, address: int) -> Any:
    # wasmtime-py's convert_from_c frees what it reads, and `call` frees the whole tree once,
    # so it converts a deep copy.
    dup = _VAL()
    ffi.wasmtime_component_val_clone(ctypes.byref(_VAL.from_address(address)), ctypes.byref(dup))
    return ty.convert_from_c(dup)


def root(ty: Any, hint: Any) -> Root:
    """A converter of a whole call result (a ctypes value) as `hint`."""
    read = plan(ty, hint)

    def lift_root(value: Any) -> Any:
        return read(ctypes.addressof(value))

    return lift_root


def call(func: Any, store: Any, result: Optional[Root], *params: Any) -> Any:
    """`func(store, *params)` with the result lifted by `result` (wasmtime-py's call protocol
    otherwise: lower the parameters, call, free every C value)."""
    fty = func.type(store)
    param_capi = (_VAL * len(params))()
    n = 0
    try:
        for (_name, ty), val in zip(fty.params, params):
            ty.convert_to_c(store, val, ctypes.pointer(param_capi[n]))
            n += 1
        out = _VAL()
        has_result = fty.result is not None
        enter_wasm(
            lambda: ffi.wasmtime_component_func_call(
                ctypes.byref(func._func),
                store._context(),
                param_capi,
                n,
                ctypes.byref(out) if has_result else None,
                1 if has_result else 0,
            )
        )
        if not has_result:
            return None
        if result is None:
            return fty.result.convert_from_c(out)
        try:
            return result(out)
        finally:
            ffi.wasmtime_component_val_delete(ctypes.byref(out))
    finally:
        for i in range(n):
            ffi.wasmtime_component_val_delete(ctypes.byref(param_capi[i]))
