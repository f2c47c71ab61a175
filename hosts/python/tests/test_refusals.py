"""What the host refuses at load, each in one line naming the problem."""

from __future__ import annotations

import shutil

import pytest

from erp_bank_sync import HostOptions, LoadError, Plugin

from conftest import component


def refusal(path, options=None) -> str:
    with pytest.raises(LoadError) as raised:
        Plugin(path, options)
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_a_component_importing_a_filesystem_is_refused_naming_it():
    message = refusal(component("files-guest/files_guest.wasm"))
    assert "wasi:filesystem/" in message and "does not grant" in message, message


def test_a_component_importing_an_unknown_interface_is_refused_naming_it():
    assert "`evil:guest/shell`" in refusal(component("greedy-guest/greedy_guest.wasm"))


def test_a_0_1_0_component_is_refused_naming_both_versions(tmp_path):
    v010 = component("v010-guest/v010_guest.wasm")
    message = refusal(v010)  # its manifest says 0.1.0
    assert "api-version 0.1.0" in message and "erp:bank-sync@0.2.0" in message, message
    # A manifest claiming 0.2.0 does not hide what the component was built for.
    copy = tmp_path / "v010_guest.wasm"
    shutil.copy(v010, copy)
    (tmp_path / "provider.toml").write_text('id = "v010"\nname = "V"\nversion = "1"\napi-version = "0.2.0"\n')
    message = refusal(copy)
    assert "built for erp:bank-sync@0.1.0" in message and "loads erp:bank-sync@0.2.0 only" in message, message


def test_an_origin_the_operator_did_not_grant_is_refused(ponto_wasm):
    message = refusal(ponto_wasm, HostOptions(granted_origins=["http://127.0.0.1:*"]))
    assert "https://api.ibanity.com" in message and "not granted" in message, message
