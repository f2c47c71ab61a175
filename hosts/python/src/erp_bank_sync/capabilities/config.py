"""`interface config`: read-only settings the operator gave the provider (the keys a provider
reads are listed in its `info().config_keys`; Ponto's: api-url, client-id, client-secret,
statement-grouping ...). A copy is taken: nothing the host does later changes a running job's
settings, and the plugin cannot write them."""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping, Optional


class ConfigCapability:
    def __init__(self, values: Mapping[str, str]):
        self.values = MappingProxyType(dict(values))

    def get(self, _store: object, key: str) -> Optional[str]:
        return self.values.get(key)
