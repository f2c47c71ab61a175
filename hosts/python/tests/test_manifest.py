"""The manifest a packaged provider carries inside it (erp:bank-sync/manifest)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from erp_bank_sync import HostOptions, Plugin
from erp_bank_sync.host import LoadError
from erp_bank_sync.manifest import embedded

from conftest import component


def test_a_packaged_provider_loads_with_no_file_beside_it(ponto_wasm: Path, tmp_path: Path):
    alone = tmp_path / "provider.wasm"
    shutil.copy(ponto_wasm, alone)
    plugin = Plugin(alone, HostOptions())
    assert plugin.id == "ponto"
    assert plugin.manifest["api-version"].startswith("0.2.")


def test_a_bare_component_carries_no_manifest(ponto_wasm: Path):
    assert embedded(component("ponto_provider.wasm").read_bytes()) is None
    assert embedded(ponto_wasm.read_bytes())["capabilities"]["http"]


def test_the_embedded_origins_must_be_granted(ponto_wasm: Path):
    with pytest.raises(LoadError, match="has not granted"):
        Plugin(ponto_wasm, HostOptions(granted_origins=["http://127.0.0.1:*"]))


def test_a_truncated_file_is_one_line(ponto_wasm: Path, tmp_path: Path):
    cut = tmp_path / "cut.wasm"
    cut.write_bytes(ponto_wasm.read_bytes()[:5000])
    with pytest.raises(LoadError, match="cannot read the plugin's manifest"):
        Plugin(cut, HostOptions())
