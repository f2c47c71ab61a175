//! Every key the provider keeps in the host's storage (scoped by the host to the connection),
//! in one place: the OAuth tokens the client rotates, the connection attempt and the connection's
//! facts the provider writes, and the reauthorization requests a sync keeps open.

/// Storage key of the rotating refresh token.
pub const KEY_REFRESH: &str = "oauth/refresh-token";
/// Storage key of the access token and its expiry (JSON).
pub const KEY_ACCESS: &str = "oauth/access-token";

/// Storage key of the connection attempt in progress (PKCE verifier, state ...).
pub const KEY_PENDING: &str = "connect/pending";
/// Storage key of the chosen institution's id.
pub const KEY_INSTITUTION: &str = "connection/institution";
/// Storage key of the Ponto organisation id (userinfo `sub`).
pub const KEY_ORGANIZATION: &str = "connection/organization";
/// Storage key of the redirect URI used to connect (reused for reauthorization links).
pub const KEY_REDIRECT: &str = "connection/redirect-uri";

/// Storage key prefix of an account's open reauthorization request (`…/{account id}`).
pub const KEY_REAUTHORIZATION: &str = "consent/reauthorization/";
