// `interface config`: read-only settings the operator gave the provider. The values (a client
// secret among them) are only handed to the guest, never logged.

export class ConfigCapability {
  /** @param {Record<string, string> | Map<string, string>} values */
  constructor(values = {}) {
    const entries = values instanceof Map ? [...values] : Object.entries(values);
    this.values = new Map(entries.map(([k, v]) => [String(k), String(v)]));
  }

  /** The import: `get(key) -> option<string>`. */
  get(key) {
    return this.values.get(key);
  }
}
