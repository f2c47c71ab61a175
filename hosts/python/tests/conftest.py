"""Fixtures: the built components (`cargo build -p erp-devkit` builds them into
target/wasm/...) and one Ponto sandbox per test session (`erp-dev sandbox`, built if missing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from erp_bank_sync import HostOptions, Plugin
from erp_bank_sync.sandbox import REPO, Sandbox, erp_binary

WASM = REPO / "target" / "wasm" / "wasm32-wasip2" / "release"
SEED = 7


def component(relative: str) -> Path:
    path = WASM / relative
    if not path.exists():
        erp_binary(name="erp-dev")  # its build builds every component (crate erp-components)
    if not path.exists():
        pytest.fail(f"{path} is missing: run `cargo build -p erp-devkit` (it builds the components)")
    return path


@pytest.fixture(scope="session")
def ponto_wasm() -> Path:
    """The packaged provider, as an operator receives it (its manifest inside)."""
    return component("../../packaged/ponto_provider.wasm")


@pytest.fixture(scope="session")
def sandbox():
    sb = Sandbox.start(seed=SEED)
    yield sb
    sb.stop()


@pytest.fixture(scope="session")
def plugin(ponto_wasm: Path) -> Plugin:
    return Plugin(ponto_wasm, HostOptions())


@pytest.fixture
def session(plugin: Plugin, sandbox: Sandbox, tmp_path: Path):
    s = plugin.session("conn-1", tmp_path / "kv.sqlite", sandbox.provider_config())
    yield s
    s.close()
