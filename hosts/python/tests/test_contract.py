"""The 0.2.0 contract's promises to a Python host, checked on the built component."""

from __future__ import annotations

from wasmtime import Engine
from wasmtime.component import Component, ComponentInstanceType, FuncType, ResultType, VariantType


def erp_functions(path):
    engine = Engine()
    ty = Component.from_file(engine, str(path)).type
    for externs in (ty.imports(engine), ty.exports(engine)):
        for name, item in externs.items():
            item = getattr(item, "ty", item)
            if name.startswith("erp:bank-sync/") and isinstance(item, ComponentInstanceType):
                for fname, fty in item.exports(engine).items():
                    fty = getattr(fty, "ty", fty)
                    if isinstance(fty, FuncType):
                        yield f"{name}#{fname}", fty


def test_every_result_has_one_shape_bare_ok_and_variant_error(ponto_wasm):
    results = {name: f.result for name, f in erp_functions(ponto_wasm) if isinstance(f.result, ResultType)}
    assert len(results) >= 13, sorted(results)
    for name, result in results.items():
        # Untagged result (ok bare) whose error is itself always a `Variant`.
        assert not result._tagged(), f"{name}: wasmtime-py would wrap it in Variant('ok', ...)"
        assert isinstance(result.err, VariantType) and result.err._tagged(), f"{name}: error not a Variant"


def test_http_bodies_are_text_or_bytes(ponto_wasm):
    send = dict(erp_functions(ponto_wasm))["erp:bank-sync/http@0.2.0#send"]
    body = dict(send.result.ok.fields)["body"]
    assert [case for case, _ in body.cases] == ["text", "binary"]


def test_the_fast_lifter_gives_what_wasmtime_py_gives(session):
    from erp_bank_sync import types as t

    fast = session.list_institutions()
    store, funcs = session._instance()
    generic = funcs["list-institutions"](store, t.to_wit(t.InstitutionFilter()))
    funcs["list-institutions"].post_return(store)
    assert fast == t.from_wit(list[t.Institution], generic) and len(fast) > 3


def test_the_generic_path_gives_what_the_fast_lifter_gives(session, monkeypatch):
    from erp_bank_sync import lift

    assert lift.ENABLED, "the pinned wasmtime-py is the one the fast lifter was checked against"
    fast = session.list_institutions()
    monkeypatch.setattr(lift, "ENABLED", False)
    assert session.list_institutions() == fast and len(fast) > 3
