// Types of the Node host's public API. The provider types mirror wit/ (erp:bank-sync) with
// jco's mapping: record fields in camelCase, `option<T>` as `T | undefined`, enums and variant
// tags as their kebab-case WIT names, `u64` as bigint.

export type Decimal = string;
export type Date = string;
export type Timestamp = string;

export interface Maintenance { kind: string; startsAt?: Timestamp; endsAt?: Timestamp }
export interface Institution {
  id: string; name: string; country?: string; bic?: string;
  status: 'stable' | 'beta' | 'experimental' | 'unknown'; deprecated: boolean; timeZone: string;
  maintenance?: Maintenance; providerName: string;
}
export interface InstitutionFilter { country?: string; nameContains?: string }
export interface Balance { amount: Decimal; referenceDate: Date }
export interface Account {
  id: string; institutionId: string; reference: string; referenceType: string; description: string;
  product?: string; holderName?: string; currency: string; currentBalance?: Balance;
  availableBalance?: Balance; authorizedAt?: Timestamp; consentExpiresAt?: Timestamp;
  consentDaysLeft?: number; availability: 'available' | 'readonly' | 'unavailable';
  deprecated: boolean; synchronizedAt?: Timestamp;
}
export interface StatementLine {
  transactionId: string; statementKey: string; bookingDate: Date; valueDate?: Date;
  amount: Decimal; currency: string; paymentReference: string; structuredReference: boolean;
  description?: string; partnerName?: string; partnerAccount?: string; endToEndId?: string;
  bankTransactionCode?: string; mandateId?: string; creditorId?: string; cardReference?: string;
  rawJson: string;
}
export interface Statement { key: string; name: string; dateFrom: Date; dateTo: Date; balanceStart: Decimal; balanceEnd: Decimal }
export interface PendingLine {
  transactionId: string; date: Date; amount: Decimal; currency: string; paymentReference: string;
  partnerName?: string; rawJson: string;
}
export type WarningKind = 'balance-gap' | 'consent-expiring' | 'maintenance' | 'deprecated'
  | 'recently-synchronized' | 'synchronization-pending' | 'beta-institution' | 'other';
export interface Warning { kind: WarningKind; message: string }

export type ProviderErrorValue =
  | { tag: 'invalid-argument'; val: { name: string; reason: string } }
  | { tag: 'invalid-client'; val: string }
  | { tag: 'reconnect-required'; val: string }
  | { tag: 'state-mismatch'; val: string }
  | { tag: 'no-accounts-for-institution'; val: { institution: string; authorizedInstitutions: string[] } }
  | { tag: 'authorization-expired'; val: { accountId: string; expiredAt?: Timestamp; reauthorizationUrl?: string; advice: string } }
  | { tag: 'not-found'; val: string }
  | { tag: 'rate-limited'; val: { retryAfterSeconds?: number; message: string } }
  | { tag: 'upstream'; val: { status: number; code?: string; detail: string; requestId?: string; advice?: string } }
  | { tag: 'malformed-response'; val: { what: string; field?: string; resourceId?: string; reason: string } }
  | { tag: 'transport'; val: string }
  | { tag: 'storage'; val: string };

export interface ProviderInfo { id: string; name: string; version: string; apiVersion: string; configKeys: string[] }
export interface ConnectStart { authorizationUrl: string; state: string }
export interface Connection {
  organizationId: string; organizationName?: string; institution: Institution;
  accounts: Account[]; authorizedAccountCount: number;
}
export interface SyncRequest {
  accountId: string; cursor?: string; state?: string; customerIp?: string; since?: Date;
  /** Default 1000. */
  maxLines?: number;
}
export type SyncProgress = { tag: 'more'; val: string } | { tag: 'done'; val: string };
export interface SyncBatch {
  account?: Account; lines: StatementLine[]; updatedLines: StatementLine[]; statements: Statement[];
  pending?: PendingLine[]; warnings: Warning[]; transactionsRead: bigint; progress: SyncProgress;
}

/** Something with the five level methods, called as `(fields, message)` (pino's shape). */
export interface Logger {
  trace(fields: object, message: string): void; debug(fields: object, message: string): void;
  info(fields: object, message: string): void; warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface HostOptions {
  /** Scopes the plugin's storage: one Provider per connection. */
  connection: string;
  /** Read-only settings (`config.get`); keys are listed by `info().configKeys`. */
  config?: Record<string, string> | Map<string, string>;
  /** Origins the operator grants (`https://host[:port]`, `http://127.0.0.1:*` for loopback). Every
   * origin the plugin's provider.toml asks for must be among them; those are its allowlist. */
  grantedOrigins?: string[];
  /** SQLite file of the plugin's storage (the Rust host's `plugin_storage` table). Default in memory. */
  storagePath?: string;
  logger?: Logger;
  /** Longest wait for one HTTP answer; the plugin may ask for less. Default 30 s. */
  httpTimeoutMs?: number;
  /** Response body cap. Default 16 MiB. */
  maxResponseBytes?: number;
  /** Extra trusted roots (PEM) for https to loopback hosts only (test servers). */
  loopbackCa?: string;
  /** Storage quota per connection. Default 1024 keys, 64 KiB a value. */
  quota?: { maxKeys: number; maxValueBytes: number };
  /** Linear memory cap (process-wide in V8; the lowest asked wins). Default 256 MiB. */
  maxMemoryBytes?: number;
  /** Wall-clock limit of one call into the plugin (HTTP waits included). Default 60 s. */
  callTimeoutMs?: number;
  /** Where transpiled components are cached. Default hosts/node/.cache/jco. */
  cacheDir?: string;
}

/** Loads and checks a component (refusing one that imports more than this host grants). */
export function loadProvider(path: string, options: HostOptions): Promise<Provider>;

export class Provider {
  info(): ProviderInfo;
  listInstitutions(filter?: InstitutionFilter): Institution[];
  beginConnect(institutionId: string, redirectUri: string): ConnectStart;
  completeConnect(callbackUrl: string): Connection;
  listAccounts(institutionId?: string): Account[];
  sync(request: SyncRequest): SyncBatch;
  requestReauthorization(accountId: string, redirectUri: string): string;
  disconnect(): void;
  logCounts(): { written: number; dropped: number };
  close(): void;
}

/** The provider answered with a typed error. */
export class ProviderError extends Error { error: ProviderErrorValue }
/** The plugin trapped; the next call runs on a fresh instance. */
export class PluginCrashed extends Error {}
/** The plugin ran past `callTimeoutMs` and was stopped; the next call runs on a fresh instance. */
export class PluginTimedOut extends Error {}
/** The component was refused; `message` is one line naming the file and the reason. */
export class LoadError extends Error { import?: string }

export class Books {
  accounts: Map<string, { lines: Map<string, StatementLine>; statements: Map<string, Statement>; state?: string; account?: Account }>;
  apply(accountId: string, batch: SyncBatch): number;
  state(accountId: string): string | undefined;
}
export function syncAccount(
  provider: Provider, accountId: string, books: Books,
  options?: { maxLines?: number; since?: Date; customerIp?: string },
): { batches: number; newLines: number; transactionsRead: bigint; warnings: Warning[] };
export function parseOrigin(text: string): { scheme: string; host: string; port: number | null };
/** The contract this host loads: `erp:bank-sync` 0.2.x. */
export const CONTRACT: { package: string; version: string; full: string };
