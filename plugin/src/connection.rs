//! What the provider reads about a connection for both its operations and its syncs: the
//! chosen institution, and the account reauthorization requests kept open at Ponto.

use crate::bindings::Result;
use crate::bindings::http::Method;
use crate::bindings::log::Level;
use crate::bindings::types::{Institution, ProviderError};
use crate::client::{Api, Auth, storage_failure};
use crate::jsonapi::{Resource, Single};
use crate::keys::KEY_REAUTHORIZATION;
use crate::mapping;
use serde::{Deserialize, Serialize};

/// `/financial-institutions/{id}` (public list, no token needed).
pub fn fetch_institution(api: &Api<'_>, id: &str) -> Result<Institution> {
    let url = api.url(&format!(
        "/financial-institutions/{}",
        crate::url::encode(id)
    ));
    let body = api.get(&url, Auth::None, &format!("financial institution {id}"))?;
    let doc: Single = serde_json::from_slice(&body).map_err(|e| {
        ProviderError::malformed("financial institution", None, Some(id), e.to_string())
    })?;
    let institution = mapping::institution(&doc.data)?;
    if Resource::parse(&doc.data, "financial institution")
        .ok()
        .is_some_and(|r| r.attributes.text("status").is_none())
    {
        api.log(
            Level::Info,
            &format!("Ponto gives institution {id} no status: it is shown as unknown"),
        );
    }
    Ok(institution)
}

/// A reauthorization request created at Ponto and not yet used, kept so that every sync of an
/// account whose consent ended hands out the same link instead of creating one more.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OpenReauthorization {
    redirect: String,
    redirect_uri: String,
    /// The account's `authorizedAt` when it was created, if known: a new consent makes it
    /// stale (and a sync that finds the consent valid forgets it).
    authorized_at: Option<String>,
}

/// The link of the account's open reauthorization request, created at Ponto only when none is
/// kept for this consent and redirect URI (Ponto offers no way to read one back, so a request
/// is taken as open until the account shows a valid consent again). `authorized_at`: the
/// account's, or none when unknown. Used by sync; an explicit
/// `request-reauthorization` always creates a fresh one.
pub fn open_reauthorization(
    api: &Api<'_>,
    account_id: &str,
    redirect_uri: &str,
    authorized_at: Option<&str>,
) -> Result<String> {
    let key = format!("{KEY_REAUTHORIZATION}{account_id}");
    let kept: Option<OpenReauthorization> = api
        .host
        .storage()
        .get(&key)
        .ok()
        .flatten()
        .and_then(|v| serde_json::from_str(&v).ok());
    if let Some(k) = kept
        && k.redirect_uri == redirect_uri
        && (authorized_at.is_none()
            || k.authorized_at.is_none()
            || k.authorized_at.as_deref() == authorized_at)
    {
        return Ok(k.redirect);
    }
    let link = reauthorization_link(api, account_id, redirect_uri)?;
    keep_reauthorization(api, account_id, redirect_uri, &link, authorized_at);
    Ok(link)
}

/// Keeps a reauthorization link for the syncs to reuse; a failed write only costs one more
/// request at the next sync.
pub fn keep_reauthorization(
    api: &Api<'_>,
    account_id: &str,
    redirect_uri: &str,
    link: &str,
    authorized_at: Option<&str>,
) {
    let open = OpenReauthorization {
        redirect: link.to_string(),
        redirect_uri: redirect_uri.to_string(),
        authorized_at: authorized_at.map(str::to_string),
    };
    let key = format!("{KEY_REAUTHORIZATION}{account_id}");
    let stored = serde_json::to_string(&open)
        .map_err(|e| e.to_string())
        .and_then(|v| api.host.storage().set(&key, &v).map_err(storage_failure));
    if let Err(e) = stored {
        api.log(
            Level::Warn,
            &format!("the reauthorization link could not be kept: {e}"),
        );
    }
}

/// Forgets the account's open reauthorization request once its consent is valid again.
pub fn forget_reauthorization(api: &Api<'_>, account_id: &str) {
    let key = format!("{KEY_REAUTHORIZATION}{account_id}");
    if api.host.storage().get(&key).ok().flatten().is_some() {
        let _ = api.host.storage().delete(&key);
    }
}

/// POST a reauthorization request and return the link Ponto gives.
pub fn reauthorization_link(api: &Api<'_>, account_id: &str, redirect_uri: &str) -> Result<String> {
    let url = api.url(&format!(
        "/accounts/{}/reauthorization-requests",
        crate::url::encode(account_id)
    ));
    let body = serde_json::json!({"data": {"type": "reauthorizationRequest",
        "attributes": {"redirectUri": redirect_uri}}});
    let resp = api.send(
        Method::Post,
        &url,
        Auth::Bearer,
        Some(("application/vnd.api+json", body.to_string().into_bytes())),
    )?;
    let body = api.expect_ok(resp, &format!("account {account_id}"))?;
    let doc: Single = serde_json::from_slice(&body).map_err(|e| {
        ProviderError::malformed("reauthorization request", None, None, e.to_string())
    })?;
    let r = Resource::parse(&doc.data, "reauthorization request")?;
    r.link("redirect").map(str::to_string).ok_or_else(|| {
        ProviderError::malformed(
            "reauthorization request",
            Some("links.redirect"),
            r.id.as_deref(),
            "no redirect link",
        )
    })
}
