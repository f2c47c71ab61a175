"""Load any `erp:bank-sync@0.2` provider component and call it with typed objects.

The same rules as the Rust host (`host-harness/src/runtime/`):
- at load: the manifest (the `erp:bank-sync/manifest` section of a packaged provider, else the
  `provider.toml` beside a bare `.wasm`) must ask only for granted origins;
  the component must be built for `erp:bank-sync@0.2.x` (a 0.1.0 one is refused in one line
  naming both versions) and import nothing beyond the four capabilities and the WASI interfaces
  Rust's std uses (`wasi:cli`, `wasi:io`, `wasi:clocks`, `wasi:random`): a component that imports
  `wasi:filesystem`, `wasi:sockets` or anything else is refused, naming the interface. (wasmtime-py
  can only link all of WASI p2 at once, so this check is what keeps files and sockets out; the
  WASI context has no preopens, no environment and no arguments either way.)
- per call: a memory cap (256 MiB) and a wall-clock deadline (60 s, epoch interruption).
- a trap (crash, deadline, memory) poisons the instance: the session drops it and the next call
  runs in a fresh one; plugin storage is on disk, so nothing the plugin wrote is lost.
"""

from __future__ import annotations

import threading
import time
import tomllib
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Optional

from wasmtime import Config, Engine, Store, WasiConfig, WasmtimeError
from wasmtime.component import Component, Linker, Variant

from . import lift, manifest
from . import types as t
from .capabilities.config import ConfigCapability
from .capabilities.http import AllowedOrigin, HttpCapability, HttpPolicy
from .capabilities.log import LogCapability
from .capabilities.storage import Quota, StorageCapability

API_VERSION = "0.2.0"
_API_PREFIX = "0.2."
GRANTED_IMPORTS = (
    f"erp:bank-sync/types@{_API_PREFIX}",
    f"erp:bank-sync/http@{_API_PREFIX}",
    f"erp:bank-sync/storage@{_API_PREFIX}",
    f"erp:bank-sync/log@{_API_PREFIX}",
    f"erp:bank-sync/config@{_API_PREFIX}",
    "wasi:cli/",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
)
PROVIDER = f"erp:bank-sync/provider@{API_VERSION}"
TICK_S = 0.05  # epoch granularity of the deadline


class LoadError(Exception):
    """The plugin cannot be loaded; the message names the file and the problem, in one line."""


class CallError(Exception):
    """A call into the plugin failed (as opposed to the plugin answering with an error)."""


class PluginTrap(CallError):
    """The plugin crashed, ran past its deadline or its memory: its instance was dropped and the
    next call starts a fresh one."""


@dataclass
class HostOptions:
    granted_origins: list[str] = field(
        default_factory=lambda: ["https://api.ibanity.com", "http://127.0.0.1:*", "http://localhost:*"]
    )
    max_memory_bytes: int = 256 * 1024 * 1024
    call_timeout_s: float = 60.0
    http_timeout_s: float = 30.0
    max_response_bytes: int = 16 * 1024 * 1024
    client_certificates: dict[str, tuple[str, str]] = field(default_factory=dict)
    storage_quota: Quota = field(default_factory=Quota)


def _engine() -> Engine:
    config = Config()
    config.epoch_interruption = True
    engine = Engine(config)
    ref = weakref.ref(engine)

    def tick() -> None:
        # The deadline's clock; the thread ends once the engine is gone.
        while (e := ref()) is not None:
            e.increment_epoch()
            del e
            time.sleep(TICK_S)

    threading.Thread(target=tick, name="erp-bank-sync-epoch", daemon=True).start()
    return engine


def foreign_api_version(names: list[str]) -> Optional[str]:
    """The `erp:bank-sync` version the component was built for, when this host does not load it."""
    for name in names:
        if name.startswith("erp:bank-sync/") and "@" in name:
            version = name.split("@", 1)[1]
            if not version.startswith(_API_PREFIX):
                return version
    return None



# The typed result of each export (its ok type; an error stays a Variant until `_result`).
RESULTS: dict[str, object] = {
    "info": t.ProviderInfo,
    "list-institutions": list[t.Institution],
    "begin-connect": t.ConnectStart,
    "complete-connect": t.Connection,
    "list-accounts": list[t.Account],
    "sync": t.SyncBatch,
    "request-reauthorization": str,
    "disconnect": type(None),
}


class Plugin:
    """A checked, compiled provider component; `session()` gives one connection's calls."""

    def __init__(self, path: str | Path, options: Optional[HostOptions] = None):
        self.path = Path(path)
        self.options = options or HostOptions()
        try:
            embedded = manifest.embedded(self.path.read_bytes())
        except (OSError, ValueError) as e:
            raise LoadError(f"{self.path}: cannot read the plugin's manifest: {e}") from None
        if embedded is not None:
            # A packaged provider carries its manifest (erp:bank-sync/manifest section).
            manifest_path, self.manifest = self.path, embedded
        else:
            # A bare component: the legacy provider.toml beside it.
            manifest_path = self.path.with_name("provider.toml")
            try:
                self.manifest = tomllib.loads(manifest_path.read_text())
            except (OSError, tomllib.TOMLDecodeError) as e:
                raise LoadError(f"{manifest_path}: cannot read the manifest: {e}") from None
        api = str(self.manifest.get("api-version", ""))
        if not api.startswith(_API_PREFIX):
            raise LoadError(
                f"{manifest_path}: api-version {api or '(none)'} is not supported by this host "
                f"(it loads erp:bank-sync@{API_VERSION} only): rebuild the plugin against {API_VERSION}"
            )
        granted = [AllowedOrigin.parse(o) for o in self.options.granted_origins]
        for text in self.manifest.get("capabilities", {}).get("http", []):
            if AllowedOrigin.parse(text) not in granted:
                raise LoadError(
                    f"{manifest_path}: the manifest asks for {text}, which the operator has not "
                    "granted; grant it or remove it"
                )
        self.granted = granted
        self.engine = _engine()
        try:
            self.component = Component.from_file(self.engine, str(self.path))
        except (OSError, WasmtimeError) as e:
            raise LoadError(f"{self.path}: not a WebAssembly component ({_one_line(e)})") from None
        ty = self.component.type
        self.imports = list(ty.imports(self.engine))
        self.exports = list(ty.exports(self.engine))
        found = foreign_api_version(self.imports + self.exports)
        if found:
            raise LoadError(
                f"{self.path}: the plugin was built for erp:bank-sync@{found}; this host loads "
                f"erp:bank-sync@{API_VERSION} only: rebuild the plugin against {API_VERSION}"
            )
        for name in self.imports:
            if not name.startswith(GRANTED_IMPORTS):
                raise LoadError(
                    f"{self.path}: the plugin imports `{name}`, which this host does not grant"
                )
        if PROVIDER not in self.exports:
            raise LoadError(f"{self.path}: the plugin does not export `{PROVIDER}`")
        self.id = str(self.manifest.get("id", "plugin"))
        self.plans: dict[str, lift.Root] = {}

    def plan(self, name: str, func: object, store: Store) -> Optional[lift.Root]:
        """The fast result converter of export `name`, built once from its type; none where
        `lift` is not verified against the installed wasmtime-py (the generic path then)."""
        if not lift.ENABLED:
            return None
        if name not in self.plans:
            self.plans[name] = lift.root(func.type(store).result, RESULTS[name])  # type: ignore[attr-defined]
        return self.plans[name]


    def session(
        self, connection: str, storage_path: str | Path, config: Mapping[str, str]
    ) -> "Session":
        return Session(self, connection, str(storage_path), config)


class Session:
    """One connection's capabilities and (lazily) its instance. Not thread-safe: one job at a
    time per session, as in the Rust host."""

    def __init__(self, plugin: Plugin, connection: str, storage_path: str, config: Mapping[str, str]):
        o = plugin.options
        self.plugin = plugin
        self.connection = connection
        self.http = HttpCapability(
            HttpPolicy(plugin.granted, o.http_timeout_s, o.max_response_bytes, o.client_certificates),
            plugin.id,
        )
        self.storage = StorageCapability(storage_path, plugin.id, connection, o.storage_quota)
        self.log = LogCapability(plugin.id, connection)
        self.config = ConfigCapability(config)
        self._store: Optional[Store] = None
        self._funcs: dict[str, object] = {}
        self.instances_started = 0

    # -- instance lifecycle -------------------------------------------------------------------

    def _linker(self) -> Linker:
        linker = Linker(self.plugin.engine)
        linker.add_wasip2()
        with linker.root() as root:
            for iface, funcs in (
                ("http", {"send": self.http.send}),
                (
                    "storage",
                    {
                        "get": self.storage.get,
                        "set": self.storage.set,
                        "delete": self.storage.delete,
                        "list-keys": self.storage.list_keys,
                        "compare-and-swap": self.storage.compare_and_swap,
                    },
                ),
                ("log", {"write": self.log.write}),
                ("config", {"get": self.config.get}),
            ):
                with root.add_instance(f"erp:bank-sync/{iface}@{API_VERSION}") as inst:
                    for name, fn in funcs.items():
                        inst.add_func(name, fn)
        return linker

    def _instance(self) -> tuple[Store, dict[str, object]]:
        if self._store is None:
            store = Store(self.plugin.engine)
            store.set_wasi(WasiConfig())  # no preopens, no env, no args
            store.set_limits(memory_size=self.plugin.options.max_memory_bytes)
            store.set_epoch_deadline(1 << 40)
            instance = self._linker().instantiate(store, self.plugin.component)
            provider = instance.get_export_index(store, PROVIDER)
            funcs = {}
            for name in RESULTS:
                index = instance.get_export_index(store, name, provider)
                funcs[name] = instance.get_func(store, index)
            self._store, self._funcs = store, funcs
            self.instances_started += 1
        return self._store, self._funcs

    def _call(self, name: str, *args: object) -> object:
        store, funcs = self._instance()
        func = funcs[name]
        ticks = max(1, int(self.plugin.options.call_timeout_s / TICK_S))
        store.set_epoch_deadline(ticks)
        try:
            plan = self.plugin.plan(name, func, store)
            if plan is None:
                out = t.from_wit(RESULTS[name], func(store, *args))  # type: ignore[operator]
            else:
                out = lift.call(func, store, plan, *args)
            func.post_return(store)  # type: ignore[attr-defined]
        except WasmtimeError as e:
            # A trap poisons the instance: drop it; the next call starts a fresh one.
            self._store, self._funcs = None, {}
            raise PluginTrap(f"the plugin crashed in `{name}`: {_one_line(e)}") from None
        return out

    def _result(self, name: str, *args: object) -> object:
        out = self._call(name, *args)
        if isinstance(out, Variant):  # the contract's one shape: an error is always a Variant
            raise t.provider_error(out)
        return out

    # -- the provider interface, typed ---------------------------------------------------------

    def info(self) -> t.ProviderInfo:
        return self._call("info")  # type: ignore[return-value]

    def list_institutions(self, filter: t.InstitutionFilter = t.InstitutionFilter()) -> list[t.Institution]:
        return self._result("list-institutions", t.to_wit(filter))  # type: ignore[return-value]

    def begin_connect(self, institution_id: str, redirect_uri: str) -> t.ConnectStart:
        return self._result("begin-connect", institution_id, redirect_uri)  # type: ignore[return-value]

    def complete_connect(self, callback_url: str) -> t.Connection:
        return self._result("complete-connect", callback_url)  # type: ignore[return-value]

    def list_accounts(self, institution_id: Optional[str] = None) -> list[t.Account]:
        return self._result("list-accounts", institution_id)  # type: ignore[return-value]

    def sync(self, request: t.SyncRequest) -> t.SyncBatch:
        return self._result("sync", t.to_wit(request))  # type: ignore[return-value]

    def request_reauthorization(self, account_id: str, redirect_uri: str) -> str:
        return self._result("request-reauthorization", account_id, redirect_uri)  # type: ignore[return-value]

    def disconnect(self) -> None:
        self._result("disconnect")

    # -- a whole sync ----------------------------------------------------------------------------

    def sync_batches(
        self,
        account_id: str,
        state: Optional[str] = None,
        cursor: Optional[str] = None,
        customer_ip: Optional[str] = None,
        since: Optional[str] = None,
        max_lines: int = 1000,
    ) -> Iterator[t.SyncBatch]:
        """Every batch of one account's sync, until `done`. Commit each batch together with its
        `progress` (the cursor to resume from, or the final state to pass to the next sync), so
        a crash never loses or doubles a line."""
        while True:
            batch = self.sync(
                t.SyncRequest(account_id, cursor, state, customer_ip, since, max_lines)
            )
            yield batch
            if batch.progress.done:
                return
            cursor = batch.progress.value

    def close(self) -> None:
        self._store, self._funcs = None, {}
        self.storage.close()


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:500]


__all__ = ["Plugin", "Session", "HostOptions", "LoadError", "CallError", "PluginTrap", "API_VERSION"]
