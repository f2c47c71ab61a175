"""A trap drops the instance and the next call runs in a fresh one (hostile guest)."""

from __future__ import annotations

from erp_bank_sync import HostOptions, Plugin, PluginTrap
from erp_bank_sync import types as t

from conftest import component


def hostile(tmp_path, **options):
    plugin = Plugin(component("hostile-guest/hostile_guest.wasm"), HostOptions(**options))
    return plugin.session("c", tmp_path / "kv.sqlite", {})


def test_a_runaway_call_is_stopped_and_the_next_call_gets_a_fresh_instance(tmp_path):
    session = hostile(tmp_path, call_timeout_s=0.5)
    try:
        session.list_institutions(t.InstitutionFilter(name_contains="loop"))
        raise AssertionError("the loop was not stopped")
    except PluginTrap as e:
        assert "list-institutions" in str(e)
    assert session.list_institutions(t.InstitutionFilter(name_contains="ok")) == []
    assert session.instances_started == 2


def test_a_memory_hog_is_stopped_at_the_cap(tmp_path):
    session = hostile(tmp_path, max_memory_bytes=32 * 1024 * 1024)
    try:
        session.list_institutions(t.InstitutionFilter(name_contains="memory"))
        raise AssertionError("the hoarding was not stopped")
    except PluginTrap:
        pass
    assert session.list_institutions(t.InstitutionFilter()) == []


def test_a_request_off_the_allowlist_is_denied_naming_the_origin(tmp_path):
    session = hostile(tmp_path)
    try:
        session.list_institutions(t.InstitutionFilter(name_contains="off-allowlist"))
        raise AssertionError("not denied")
    except t.ProviderError as e:
        assert e.kind == "transport" and "exfiltrate.example.com" in str(e), e


def test_a_log_flood_is_throttled(tmp_path):
    session = hostile(tmp_path)
    session.list_institutions(t.InstitutionFilter(name_contains="log-flood"))
    assert session.log.written <= 1000 and session.log.written + session.log.dropped == 100_000
