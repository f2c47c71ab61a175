//! The provider's operations (provider.wit), on top of its [`Imports`].

use crate::bindings::Result;
use crate::bindings::http::Method;
use crate::bindings::provider::{ConnectStart, Connection, ProviderInfo, SyncBatch, SyncRequest};
use crate::bindings::types::{
    Account, Institution, InstitutionFilter, NoAccountsError, ProviderError,
};
use crate::client::{Api, Auth, storage_error};
use crate::config::{CONFIG_KEYS, Config};
use crate::connection::{fetch_institution, keep_reauthorization, reauthorization_link};
use crate::imports::Imports;
use crate::jsonapi::Resource;
use crate::keys::{
    KEY_ACCESS, KEY_INSTITUTION, KEY_ORGANIZATION, KEY_PENDING, KEY_REDIRECT, KEY_REFRESH,
};
use crate::mapping;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// OAuth scopes: account information, organisation name, and a refresh token.
const SCOPE: &str = "ai name offline_access";
/// Version of the WIT package this provider implements.
pub const API_VERSION: &str = "0.2.0";

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PendingConnect {
    state: String,
    verifier: String,
    institution_id: String,
    redirect_uri: String,
}

/// The Ponto provider for one call.
pub struct Provider<'h> {
    host: &'h dyn Imports,
}

/// Who the provider is.
pub fn info() -> ProviderInfo {
    ProviderInfo {
        id: "ponto".into(),
        name: "Ponto".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        api_version: API_VERSION.into(),
        config_keys: CONFIG_KEYS.iter().map(|k| k.to_string()).collect(),
    }
}

fn require_url(name: &str, value: &str) -> Result<()> {
    if crate::url::origin(value.trim()).is_none() {
        return Err(ProviderError::argument(
            name,
            format!("`{value}` is not an absolute http(s) URL"),
        ));
    }
    Ok(())
}

fn require_id(name: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(ProviderError::argument(name, "is empty"));
    }
    Ok(())
}

impl<'h> Provider<'h> {
    /// A provider over `host`.
    pub fn new(host: &'h dyn Imports) -> Self {
        Provider { host }
    }

    fn api(&self) -> Result<Api<'h>> {
        Ok(Api::new(self.host, Config::load(self.host)?))
    }

    fn get(&self, key: &str) -> Result<Option<String>> {
        self.host.storage().get(key).map_err(storage_error)
    }

    fn set(&self, key: &str, value: &str) -> Result<()> {
        self.host.storage().set(key, value).map_err(storage_error)
    }

    /// Institutions, all pages, filtered by country and name.
    pub fn list_institutions(&self, filter: &InstitutionFilter) -> Result<Vec<Institution>> {
        let api = self.api()?;
        let country = match filter.country.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(c) if c.len() == 2 && c.chars().all(|ch| ch.is_ascii_alphabetic()) => {
                Some(c.to_ascii_uppercase())
            }
            Some(c) => {
                return Err(ProviderError::argument(
                    "filter.country",
                    format!("`{c}` is not an ISO 3166-1 alpha-2 code"),
                ));
            }
        };
        let name = filter
            .name_contains
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty());
        let mut url = api.url(&format!(
            "/financial-institutions?page[limit]={}",
            api.config.page_size
        ));
        if let Some(c) = &country {
            url.push_str(&format!("&filter[country][eq]={c}"));
        }
        if let Some(n) = name {
            url.push_str(&format!(
                "&filter[name][contains]={}",
                crate::url::encode(n)
            ));
        }
        let needle = name.map(str::to_lowercase);
        let mut out = Vec::new();
        api.all_pages(&url, Auth::None, "financial institutions", |raw| {
            let inst = mapping::institution(raw)?;
            // Filter here too: the filters are a server hint, the contract is ours.
            let country_ok = country.is_none() || inst.country == country;
            let name_ok = needle
                .as_ref()
                .is_none_or(|n| inst.name.to_lowercase().contains(n));
            if country_ok && name_ok {
                out.push(inst);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Starts connecting: PKCE pair and state stored, authorization URL returned.
    pub fn begin_connect(&self, institution_id: &str, redirect_uri: &str) -> Result<ConnectStart> {
        require_id("institution-id", institution_id)?;
        require_url("redirect-uri", redirect_uri)?;
        let api = self.api()?;
        let (client_id, _) = api.config.credentials()?;
        match fetch_institution(&api, institution_id) {
            Err(ProviderError::NotFound(_)) => {
                return Err(ProviderError::argument(
                    "institution-id",
                    format!("Ponto knows no institution `{institution_id}`"),
                ));
            }
            other => other?,
        };
        let random = |n: usize| -> Result<String> {
            let bytes = self.host.random_bytes(n);
            if bytes.len() < n {
                return Err(ProviderError::Transport(
                    "the host gave no randomness for the PKCE verifier".into(),
                ));
            }
            Ok(URL_SAFE_NO_PAD.encode(bytes))
        };
        let verifier = random(32)?;
        let state = random(24)?;
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let pending = PendingConnect {
            state: state.clone(),
            verifier,
            institution_id: institution_id.to_string(),
            redirect_uri: redirect_uri.trim().to_string(),
        };
        let value =
            serde_json::to_string(&pending).map_err(|e| ProviderError::Storage(e.to_string()))?;
        self.set(KEY_PENDING, &value)?;
        let e = crate::url::encode;
        let sep = if api.config.authorization_url.contains('?') {
            '&'
        } else {
            '?'
        };
        let authorization_url = format!(
            "{}{sep}client_id={}&redirect_uri={}&response_type=code&scope={}&state={}\
             &code_challenge={}&code_challenge_method=S256",
            api.config.authorization_url,
            e(client_id),
            e(&pending.redirect_uri),
            e(SCOPE),
            e(&state),
            e(&challenge),
        );
        Ok(ConnectStart {
            authorization_url,
            state,
        })
    }

    /// Finishes connecting with the callback URL.
    pub fn complete_connect(&self, callback_url: &str) -> Result<Connection> {
        let api = self.api()?;
        let pending: PendingConnect = self
            .get(KEY_PENDING)?
            .and_then(|v| serde_json::from_str(&v).ok())
            .ok_or_else(|| {
                ProviderError::argument(
                    "callback-url",
                    "no connection attempt is in progress: start with begin-connect",
                )
            })?;
        let params: BTreeMap<String, String> =
            crate::url::query_pairs(callback_url).into_iter().collect();
        if params.get("state") != Some(&pending.state) {
            // The genuine attempt stays pending: a forged callback must not cancel it.
            return Err(ProviderError::StateMismatch(
                "the callback does not belong to the connection attempt in progress (stale or \
                 forged): start connecting again"
                    .into(),
            ));
        }
        self.host
            .storage()
            .delete(KEY_PENDING)
            .map_err(storage_error)?;
        if let Some(error) = params.get("error") {
            let why = params.get("error_description").cloned().unwrap_or_default();
            return Err(ProviderError::ReconnectRequired(
                if error == "access_denied" {
                    "the authorisation was refused at Ponto (access_denied): connect again and allow \
                 access to the accounts"
                    .into()
                } else {
                    format!("Ponto ended the authorisation with `{error}` {why}: connect again")
                },
            ));
        }
        let code = params
            .get("code")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| ProviderError::argument("callback-url", "carries no `code`"))?;
        let (client_id, _) = api.config.credentials()?;
        let form = crate::url::form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &pending.redirect_uri),
            ("code_verifier", &pending.verifier),
            ("client_id", client_id),
        ]);
        let token = api.token_request(&form)?;
        let refresh = token.refresh_token.clone().ok_or_else(|| {
            ProviderError::malformed(
                "token response",
                Some("refresh_token"),
                None,
                "no refresh token: the offline_access scope was not granted",
            )
        })?;
        // A new authorisation replaces the previous token chain of this connection.
        self.set(KEY_REFRESH, &refresh)?;
        api.store_access(&token)?;
        self.set(KEY_REDIRECT, &pending.redirect_uri)?;

        let body = api.get(&api.url("/userinfo"), Auth::Bearer, "userinfo")?;
        let user: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| ProviderError::malformed("userinfo", None, None, e.to_string()))?;
        let sub = user
            .get("sub")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ProviderError::malformed("userinfo", Some("sub"), None, "no organisation id")
            })?
            .to_string();
        let organization_name = user
            .get("name")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        // The organisation that gave this consent (the WIT's organization-id), even when it is
        // not the connection's previous one: the ERP decides whether an update of credentials by
        // another organisation is acceptable (and restores this storage if not).
        self.set(KEY_ORGANIZATION, &sub)?;
        let organization_id = sub;

        let resources = self.account_resources(&api)?;
        let institution = fetch_institution(&api, &pending.institution_id)?;
        let tz = mapping::time_zone(&institution.time_zone).unwrap_or(chrono_tz::Europe::Brussels);
        let now = self.host.now();
        let mut accounts = Vec::new();
        let mut others: Vec<String> = Vec::new();
        for r in &resources {
            let inst = r
                .relationship_id("financialInstitution")
                .unwrap_or_default();
            if inst == institution.id {
                accounts.push(mapping::account(r, tz, now)?);
            } else if !others.iter().any(|o| o == inst) {
                others.push(inst.to_string());
            }
        }
        if accounts.is_empty() {
            let authorized_institutions = others
                .iter()
                .map(|id| fetch_institution(&api, id).map_or_else(|_| id.clone(), |i| i.name))
                .collect();
            return Err(ProviderError::NoAccountsForInstitution(NoAccountsError {
                institution: institution.name,
                authorized_institutions,
            }));
        }
        self.set(KEY_INSTITUTION, &institution.id)?;
        Ok(Connection {
            organization_id,
            organization_name,
            institution,
            accounts,
            authorized_account_count: u32::try_from(resources.len()).unwrap_or(u32::MAX),
        })
    }

    fn account_resources(&self, api: &Api<'_>) -> Result<Vec<Resource>> {
        let url = api.url(&format!("/accounts?page[limit]={}", api.config.page_size));
        let mut out = Vec::new();
        api.all_pages(&url, Auth::Bearer, "accounts", |raw| {
            out.push(Resource::parse(raw, "account")?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Authorised accounts, all institutions or one.
    pub fn list_accounts(&self, institution_id: Option<&str>) -> Result<Vec<Account>> {
        let api = self.api()?;
        let now = self.host.now();
        let mut zones: BTreeMap<String, chrono_tz::Tz> = BTreeMap::new();
        let mut out = Vec::new();
        for r in self.account_resources(&api)? {
            let inst = r
                .relationship_id("financialInstitution")
                .unwrap_or_default()
                .to_string();
            if institution_id.is_some_and(|want| want != inst) {
                continue;
            }
            let tz = match zones.get(&inst) {
                Some(tz) => *tz,
                None => {
                    let tz = if inst.is_empty() {
                        chrono_tz::Europe::Brussels
                    } else {
                        let i = fetch_institution(&api, &inst)?;
                        mapping::time_zone(&i.time_zone).unwrap_or(chrono_tz::Europe::Brussels)
                    };
                    zones.insert(inst.clone(), tz);
                    tz
                }
            };
            out.push(mapping::account(&r, tz, now)?);
        }
        Ok(out)
    }

    /// One sync batch.
    pub fn sync(&self, request: &SyncRequest) -> Result<SyncBatch> {
        crate::sync::sync(self.host, request)
    }

    /// A link to renew an account's bank consent.
    pub fn request_reauthorization(&self, account_id: &str, redirect_uri: &str) -> Result<String> {
        require_id("account-id", account_id)?;
        require_url("redirect-uri", redirect_uri)?;
        let api = self.api()?;
        // Asked for explicitly (the kept link may have been used or lost): a fresh one, which
        // the syncs then reuse.
        let redirect_uri = redirect_uri.trim();
        let link = reauthorization_link(&api, account_id, redirect_uri)?;
        keep_reauthorization(&api, account_id, redirect_uri, &link, None);
        Ok(link)
    }

    /// Revokes the refresh token at Ponto, then forgets every stored value.
    pub fn disconnect(&self) -> Result<()> {
        let api = self.api()?;
        if let Some(refresh) = self.get(KEY_REFRESH)? {
            let form = crate::url::form(&[("token", &refresh)]);
            let resp = api.send(
                Method::Post,
                &api.url("/oauth2/revoke"),
                Auth::Basic,
                Some(("application/x-www-form-urlencoded", form.into_bytes())),
            )?;
            // A token Ponto no longer knows is as good as revoked; anything else keeps the
            // secrets so that disconnect can be retried.
            let gone = matches!(
                crate::jsonapi::ApiError::parse(resp.body.as_bytes())
                    .code
                    .as_deref(),
                Some("invalid_grant" | "invalid_token")
            );
            if !(200..300).contains(&resp.status) && !gone {
                return Err(api.error_from(&resp, "revoke"));
            }
        }
        let keys = self.host.storage().list_keys("").map_err(storage_error)?;
        for key in keys
            .iter()
            .map(String::as_str)
            .chain([KEY_ACCESS, KEY_REFRESH])
        {
            self.host.storage().delete(key).map_err(storage_error)?;
        }
        Ok(())
    }
}
