"""What a component's contract costs a wasmtime-py host: the Python shape of every `result`
(bare ok and Variant error, or `Variant("ok"/"err", ...)`), and the time to lower a 1 MB HTTP
response body. Used to choose erp:bank-sync@0.2.0 (see wit/http.wit, wit/types.wit).

    python tools/measure_contract.py target/wasm/wasm32-wasip2/release/ponto_provider.wasm
"""

import ctypes
import sys
import time

import wasmtime._ffi as ffi
from wasmtime import Engine, Store
from wasmtime.component import Component, ComponentInstanceType, FuncType, ListType, ResultType
from wasmtime.component._types import VariantLikeType


def functions(engine, externs):
    for name, item in externs.items():
        item = getattr(item, "ty", item)
        if isinstance(item, ComponentInstanceType):
            for fname, fty in item.exports(engine).items():
                fty = getattr(fty, "ty", fty)
                if isinstance(fty, FuncType):
                    yield name, fname, fty


def main(path: str) -> None:
    engine = Engine()
    store = Store(engine)
    ty = Component.from_file(engine, path).type
    imports = list(functions(engine, ty.imports(engine)))
    for iface, fname, fty in imports + list(functions(engine, ty.exports(engine))):
        r = fty.result
        if isinstance(r, ResultType) and iface.startswith("erp:bank-sync/"):
            if r._tagged():
                shape = 'Variant("ok"/"err", ...)'
            elif isinstance(r.err, VariantLikeType) and r.err._tagged():
                shape = "bare ok, error as Variant"
            else:
                shape = "bare ok, error untagged (may look like an ok value)"
            print(f"{iface}#{fname}: {shape}")
    send = next(f for i, n, f in imports if i.startswith("erp:bank-sync/http") and n == "send")
    body_ty = dict(send.result.ok.fields)["body"]
    size = 1_000_000
    body = (b'{"a":1}' * (size // 7 + 1))[:size]
    value = body if isinstance(body_ty, ListType) else body.decode()
    raw = ffi.wasmtime_component_val_t()
    started = time.perf_counter()
    body_ty.convert_to_c(store, value, ctypes.pointer(raw))
    took = time.perf_counter() - started
    ffi.wasmtime_component_val_delete(ctypes.byref(raw))
    print(f"a {size}-byte response body lowered in {took * 1000:.1f} ms ({took / size * 1e9:.0f} ns/byte)")


if __name__ == "__main__":
    main(sys.argv[1])
