"""Fast lifting of call results straight into the typed dataclasses.

wasmtime-py's generic `convert_from_c` re-reads every record's field list and every option's
payload type from the C API for each value, and decides per value whether a variant is "tagged":
a 1000-line sync batch took ~0.7 ms per line, which alone would make a 100,000-line first sync
~50x slower than the Rust host. The component's types do not change, so this module walks them
once into a plan (one closure per type) and applies it to the raw C values; `(plan, call)` give
the same values as `types.from_wit(wasmtime-py's value)`, only faster.
"""

from __future__ import annotations

import ctypes
import dataclasses
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
    Variant,
    VariantType,
)
from wasmtime.component._enter import enter_wasm

from . import types as t

Plan = Callable[[Any], Any]
_string_at = ctypes.string_at


def _text(vec: Any) -> str:
    return _string_at(vec.data, vec.size).decode("utf-8")


def plan(ty: Any, hint: Any) -> Plan:
    """A converter from a raw `wasmtime_component_val_t` of type `ty` to the Python `hint`."""
    origin = typing.get_origin(hint)
    if origin is Union:  # Optional[X] is the WIT option's payload hint
        hint = [a for a in typing.get_args(hint) if a is not type(None)][0]
        origin = typing.get_origin(hint)
    if isinstance(ty, String):
        return lambda v: _text(v.of.string)
    if isinstance(ty, EnumType):
        return lambda v: _text(v.of.enumeration)
    if isinstance(ty, Bool):
        return lambda v: bool(v.of.boolean)
    for kind, field in ((U16, "u16"), (U32, "u32"), (U64, "u64"), (S32, "s32")):
        if isinstance(ty, kind):
            return lambda v, field=field: int(getattr(v.of, field))
    if isinstance(ty, OptionType):
        inner = plan(ty.payload, hint)
        return lambda v: inner(v.of.option.contents) if v.of.option else None
    if isinstance(ty, ListType) and origin is list:
        (item_hint,) = typing.get_args(hint)
        item = plan(ty.element, item_hint)

        def lift_list(v: Any) -> list:
            lst = v.of.list
            data = lst.data
            return [item(data[i]) for i in range(lst.size)]

        return lift_list
    if isinstance(ty, RecordType) and dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        names = [name.replace("-", "_") for name, _ in ty.fields]
        plans = [plan(fty, hints[n]) for n, (_, fty) in zip(names, ty.fields)]
        fields = list(zip(range(len(names)), plans))
        cls = hint
        if [f.name for f in dataclasses.fields(cls)] != names:
            raise TypeError(f"{cls.__name__} does not mirror the WIT record's fields {names}")

        def lift_record(v: Any) -> Any:
            data = v.of.record.data
            return cls(*[p(data[i].val) for i, p in fields])

        return lift_record
    if isinstance(ty, VariantType) and hint is t.SyncProgress:
        return lambda v: t.SyncProgress(
            _text(v.of.variant.discriminant) == "done", _text(v.of.variant.val.contents.of.string)
        )
    if isinstance(ty, ResultType):
        ok = plan(ty.ok, hint) if ty.ok is not None else (lambda v: None)
        err = ty.err

        def lift_result(v: Any) -> Any:
            r = v.of.result
            if r.is_ok:
                return ok(r.val.contents) if r.val else None
            # Errors are rare: wasmtime-py's own conversion (a Variant), copied out of the tree.
            return _generic(err, r.val.contents)

        return lift_result
    # Numbers and anything else: wasmtime-py's own conversion of a copy (it frees as it goes).
    return lambda v: _generic(ty, v)


def _generic(ty: Any, v: Any) -> Any:
    # Convert without freeing: wasmtime-py's convert_from_c frees what it reads, and the root
    # is freed once by `call`, so convert a deep copy.
    dup = ffi.wasmtime_component_val_t()
    ffi.wasmtime_component_val_clone(ctypes.byref(v), ctypes.byref(dup))
    return ty.convert_from_c(dup)


def call(func: Any, store: Any, result_plan: Optional[Plan], *params: Any) -> Any:
    """`func(store, *params)` with the result lifted by `result_plan` (wasmtime-py's call
    protocol otherwise: lower the parameters, call, free every C value)."""
    fty = func.type(store)
    param_capi = (ffi.wasmtime_component_val_t * len(params))()
    n = 0
    try:
        for (_name, ty), val in zip(fty.params, params):
            ty.convert_to_c(store, val, ctypes.pointer(param_capi[n]))
            n += 1
        result = ffi.wasmtime_component_val_t()
        has_result = fty.result is not None
        enter_wasm(
            lambda: ffi.wasmtime_component_func_call(
                ctypes.byref(func._func),
                store._context(),
                param_capi,
                n,
                ctypes.byref(result) if has_result else None,
                1 if has_result else 0,
            )
        )
        if not has_result:
            return None
        try:
            return result_plan(result) if result_plan else fty.result.convert_from_c(result)
        finally:
            if result_plan:
                ffi.wasmtime_component_val_delete(ctypes.byref(result))
    finally:
        for i in range(n):
            ffi.wasmtime_component_val_delete(ctypes.byref(param_capi[i]))


__all__ = ["plan", "call", "Variant"]
