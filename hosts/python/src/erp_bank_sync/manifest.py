"""The capability manifest a packaged provider carries in its `erp:bank-sync/manifest` custom
section (JSON, format 1; erp-plugins/src/manifest.rs documents it), read without running anything
and turned into the shape of the legacy `provider.toml` the rest of the host checks."""

from __future__ import annotations

import json
from typing import Optional

SECTION = "erp:bank-sync/manifest"
FORMAT = 1
_MAGIC = b"\0asm"


def _leb128(data: bytes, at: int) -> tuple[int, int]:
    """An unsigned LEB128 at `at`: (value, offset after it)."""
    value = shift = 0
    while True:
        if at >= len(data) or shift > 35:
            raise ValueError("a section size runs past the end of the file")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def embedded(wasm: bytes) -> Optional[dict]:
    """The manifest of a packaged component as `{id, name, api-version, capabilities: {http}}`,
    or None when it carries none (a bare component). ValueError on a malformed file or manifest."""
    if wasm[:4] != _MAGIC:
        raise ValueError("not a WebAssembly file")
    at, found = 8, []
    while at < len(wasm):
        section_id = wasm[at]
        size, start = _leb128(wasm, at + 1)
        end = start + size
        if end > len(wasm):
            raise ValueError("a section runs past the end of the file")
        if section_id == 0:
            name_len, name_at = _leb128(wasm, start)
            if wasm[name_at : name_at + name_len] == SECTION.encode():
                found.append(wasm[name_at + name_len : end])
        at = end
    if not found:
        return None
    if len(found) > 1:
        raise ValueError(f"{len(found)} `{SECTION}` sections; a provider has exactly one")
    doc = json.loads(found[0].decode("utf-8"))
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"the manifest is not in format {FORMAT}: upgrade this host")
    for key in ("id", "name", "contract-version"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise ValueError(f"the manifest's `{key}` is missing")
    origins = doc.get("origins", [])
    if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
        raise ValueError("the manifest's `origins` must be a list of origins")
    return {
        "id": doc["id"],
        "name": doc["name"],
        "api-version": doc["contract-version"],
        "capabilities": {"http": origins},
    }
