"""Host any `erp:bank-sync` bank-sync provider component (such as the Ponto provider) from
Python, with wasmtime-py: typed calls, the Rust host's capability rules, an Odoo-shaped adapter."""

from .host import API_VERSION, CallError, HostOptions, LoadError, Plugin, PluginTrap, Session
from .types import ProviderError

__all__ = [
    "API_VERSION",
    "CallError",
    "HostOptions",
    "LoadError",
    "Plugin",
    "PluginTrap",
    "ProviderError",
    "Session",
]
