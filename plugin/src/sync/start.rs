//! The first call of a sync: the bank refresh when the user is present, the account and its
//! institution, and the cursor the walk starts from.

use super::dates::{local_day, local_time, plausible};
use super::state::{Batch, parse_arg};
use super::state::{
    Cursor, INSTITUTION_MAX_AGE_HOURS, Known, KnownInstitution, Phase, SyncState, Taken,
    WalkSettings,
};
use crate::bindings::Result;
use crate::bindings::http::Method;
use crate::bindings::log::Level;
use crate::bindings::provider::SyncRequest;
use crate::bindings::types::{
    ConsentError, InstitutionStatus, ProviderError, Warning, WarningKind,
};
use crate::client::{Api, Auth};
use crate::connection::{fetch_institution, forget_reauthorization, open_reauthorization};
use crate::decimal::Decimal;
use crate::jsonapi::{ApiError, Resource, Single, timestamp};
use crate::keys::KEY_REDIRECT;
use crate::mapping;
use chrono::{Datelike, Days, NaiveDate};

/// Consent warnings start this many days before the end.
const CONSENT_WARNING_DAYS: i32 = 15;
/// Advice for an expired bank consent (Ponto's rule).
pub const CONSENT_ADVICE: &str = "The bank consent of this account has ended. Re-authorise the \
    account on Ponto's website (https://myponto.com) or with the reauthorization link; Ponto \
    asks for this every 180 days.";
/// Advice for beta and experimental institutions (the guide's FAQ).
pub const BETA_ADVICE: &str = "Errors are expected while Ponto collects feedback on this \
    institution's connection. Contact Ponto directly about problems with it.";

/// Creates the two synchronizations and polls them; returns the accountTransactions one when it
/// finished, for its updated transactions.
pub(super) fn refresh_from_bank(
    api: &Api<'_>,
    account_id: &str,
    ip: &str,
    warnings: &mut Vec<Warning>,
) -> Result<Option<String>> {
    let mut created: Vec<(String, String)> = Vec::new();
    let mut recent = false;
    for subtype in ["accountDetails", "accountTransactions"] {
        let body = serde_json::json!({"data": {"type": "synchronization", "attributes": {
            "resourceType": "account", "resourceId": account_id,
            "subtype": subtype, "customerIpAddress": ip}}});
        let resp = api.send(
            Method::Post,
            &api.url("/synchronizations"),
            Auth::Bearer,
            Some(("application/vnd.api+json", body.to_string().into_bytes())),
        )?;
        if (200..300).contains(&resp.status) {
            let id = serde_json::from_slice::<Single>(resp.body.as_bytes())
                .ok()
                .and_then(|d| Resource::parse(&d.data, "synchronization").ok())
                .and_then(|r| r.id)
                .ok_or_else(|| {
                    ProviderError::malformed("synchronization", Some("id"), None, "no id")
                })?;
            created.push((subtype.to_string(), id));
            continue;
        }
        let info = ApiError::parse(resp.body.as_bytes());
        match (resp.status, info.code.as_deref()) {
            (_, Some("accountRecentlySynchronized")) => recent = true,
            (404, _) => return Err(api.error_from(&resp, &format!("account {account_id}"))),
            _ => {
                // Fresh data is a bonus: what Ponto already holds is still read.
                let e = api.error_from(&resp, "synchronization");
                warnings.push(Warning::new(
                    WarningKind::Other,
                    format!(
                        "Ponto could not start a refresh of the account's {} from the bank ({}); \
                         the data Ponto already holds was read.",
                        refreshed(subtype),
                        e.describe()
                    ),
                ));
            }
        }
    }
    if recent {
        warnings.push(Warning::new(
            WarningKind::RecentlySynchronized,
            "Ponto refreshed this account from the bank a short while ago and refused another \
             refresh; the data Ponto holds was read. Try again in a few minutes for newer data.",
        ));
    }
    let mut open: Vec<(String, String)> = created;
    let mut transactions_sync = None;
    let mut attempt = 0;
    while !open.is_empty() && attempt < api.config.poll_attempts.max(1) {
        if attempt > 0 {
            api.host.sleep(std::time::Duration::from_millis(u64::from(
                api.config.poll_interval_ms,
            )));
        }
        attempt += 1;
        let mut still = Vec::new();
        for (subtype, id) in open {
            let url = api.url(&format!("/synchronizations/{}", crate::url::encode(&id)));
            let body = api.get(&url, Auth::Bearer, "synchronization")?;
            let r = serde_json::from_slice::<Single>(&body)
                .map_err(|e| {
                    ProviderError::malformed("synchronization", None, Some(&id), e.to_string())
                })
                .and_then(|d| Resource::parse(&d.data, "synchronization"))?;
            match r.attributes.text("status").as_deref() {
                Some("success") => {
                    if subtype == "accountTransactions" {
                        transactions_sync = Some(id);
                    }
                }
                Some("error") => {
                    let errors = sync_errors(&body);
                    let codes: Vec<String> = errors
                        .iter()
                        .filter_map(|e| e.get("code").and_then(|c| c.as_str()).map(str::to_string))
                        .collect();
                    if codes
                        .iter()
                        .any(|c| c == "authorizationInvalid" || c == "authorizationExpired")
                    {
                        return Err(consent_error(api, account_id, None, None));
                    }
                    let detail = errors
                        .iter()
                        .filter_map(|e| e.get("detail").and_then(|d| d.as_str()))
                        .collect::<Vec<_>>()
                        .join("; ");
                    warnings.push(Warning::new(
                        WarningKind::Other,
                        format!(
                            "Ponto's refresh of the account's {} from the bank failed ({}); the \
                             data Ponto already holds was read.",
                            refreshed(&subtype),
                            if detail.is_empty() {
                                codes.join(", ")
                            } else {
                                detail
                            }
                        ),
                    ));
                }
                _ => still.push((subtype, id)),
            }
        }
        open = still;
    }
    if !open.is_empty() {
        warnings.push(Warning::new(
            WarningKind::SynchronizationPending,
            "Ponto's refresh from the bank did not finish in time; the data Ponto already holds \
             was read. The next sync picks up the rest.",
        ));
    }
    Ok(transactions_sync)
}

/// What a synchronization subtype refreshes, in words.
pub(super) fn refreshed(subtype: &str) -> &'static str {
    match subtype {
        "accountDetails" => "details",
        _ => "transactions",
    }
}

pub(super) fn sync_errors(body: &[u8]) -> Vec<serde_json::Value> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.pointer("/data/attributes/errors").cloned())
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

/// The authorization-expired error, with the account's open reauthorization link (created at
/// Ponto only when none is kept for this consent). `authorized_at`: the account's, when read.
pub(super) fn consent_error(
    api: &Api<'_>,
    account_id: &str,
    expired_at: Option<String>,
    authorized_at: Option<&str>,
) -> ProviderError {
    let redirect = api.host.storage().get(KEY_REDIRECT).ok().flatten();
    let reauthorization_url =
        redirect.and_then(
            |r| match open_reauthorization(api, account_id, &r, authorized_at) {
                Ok(link) => Some(link),
                Err(e) => {
                    api.log(
                        Level::Warn,
                        &format!("no reauthorization link: {}", e.describe()),
                    );
                    None
                }
            },
        );
    ProviderError::AuthorizationExpired(ConsentError {
        account_id: account_id.to_string(),
        expired_at,
        reauthorization_url,
        advice: CONSENT_ADVICE.to_string(),
    })
}

/// The first call: bank refresh, account, institution; returns the cursor and the account.
pub(super) fn start(
    api: &Api<'_>,
    request: &SyncRequest,
    batch: &mut Batch,
) -> Result<(Cursor, crate::bindings::types::Account)> {
    let host = api.host;
    let prev: Option<SyncState> = match request.state.as_deref() {
        None => None,
        Some(s) => Some(parse_arg("state", s)?),
    };
    let since = match request.since.as_deref() {
        None => None,
        Some(s) => Some(
            NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                .ok()
                .filter(|d| (1..=9999).contains(&d.year()))
                .ok_or_else(|| {
                    ProviderError::argument("since", format!("`{s}` is not a YYYY-MM-DD date"))
                })?,
        ),
    };
    let account_id = request.account_id.as_str();
    let mut sync_id = None;
    let mut asked_refresh = false;
    if let Some(ip) = request
        .customer_ip
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        asked_refresh = true;
        sync_id = refresh_from_bank(api, account_id, ip, &mut batch.warnings)?;
    }
    let url = api.url(&format!("/accounts/{}", crate::url::encode(account_id)));
    let body = match api.get(&url, Auth::Bearer, &format!("account {account_id}")) {
        Err(ProviderError::NotFound(_)) => {
            return Err(ProviderError::NotFound(format!(
                "account {account_id}: it is not (or no longer) authorised in Ponto; fetch the \
                 accounts again"
            )));
        }
        other => other?,
    };
    let doc: Single = serde_json::from_slice(&body)
        .map_err(|e| ProviderError::malformed("account", None, Some(account_id), e.to_string()))?;
    let resource = Resource::parse(&doc.data, "account")?;
    let institution_id = resource
        .relationship_id("financialInstitution")
        .unwrap_or_default()
        .to_string();
    let now = host.now();
    let config = &api.config;
    let settings = WalkSettings {
        date_field: config.date_field,
        grouping: config.grouping,
        overlap: config.overlap_days,
    };
    let age_hours = |stamp: Option<&str>| {
        stamp
            .and_then(crate::jsonapi::When::parse)
            .map(|w| (now - w.instant()).num_hours())
    };
    // The overlap is walked when the state does not say enough, or as the periodic safety net.
    let walk_due = match prev.as_ref() {
        None => true,
        Some(p) => {
            p.walk != Some(settings)
                // One sum per day of the window: more is not a state this provider wrote.
                || p
                    .window
                    .as_ref()
                    .is_none_or(|w| w.len() > config.overlap_days as usize + 1)
                || age_hours(p.walked_at.as_deref())
                    .is_none_or(|h| h < 0 || h >= i64::from(config.overlap_walk_hours))
        }
    };
    let stored = prev
        .as_ref()
        .and_then(|p| p.institution.clone())
        .filter(|i| {
            !walk_due
                && i.id == institution_id
                && age_hours(Some(&i.read_at))
                    .is_some_and(|h| (0..INSTITUTION_MAX_AGE_HOURS).contains(&h))
        });
    let (institution, maintenance) = match stored {
        Some(i) => (i, None),
        None => {
            let i = fetch_institution(api, &institution_id)?;
            let known = KnownInstitution {
                id: i.id.clone(),
                name: i.name.clone(),
                time_zone: i.time_zone.clone(),
                status: match i.status {
                    InstitutionStatus::Stable => "stable",
                    InstitutionStatus::Beta => "beta",
                    InstitutionStatus::Experimental => "experimental",
                    InstitutionStatus::Unknown => "unknown",
                }
                .to_string(),
                deprecated: i.deprecated,
                read_at: timestamp(now),
            };
            (known, i.maintenance)
        }
    };
    let tz = mapping::time_zone(&institution.time_zone).unwrap_or(chrono_tz::Europe::Brussels);
    // A zone the provider does not carry falls back to Brussels: never silently.
    batch
        .warnings
        .extend(mapping::zone_warning(&institution.time_zone));
    let account = mapping::account(&resource, tz, now)?;

    // `unknown` (Ponto gave no status) claims no trouble: no warning, no advice on errors.
    if !matches!(institution.status.as_str(), "stable" | "unknown") {
        *api.advice.borrow_mut() = Some(BETA_ADVICE.to_string());
        let status = if institution.status == "beta" {
            "a beta"
        } else {
            "an experimental"
        };
        batch.warnings.push(Warning::new(
            WarningKind::BetaInstitution,
            format!(
                "{} is {status} institution at Ponto. {BETA_ADVICE}",
                institution.name
            ),
        ));
    }
    if institution.deprecated || account.deprecated {
        batch.warnings.push(Warning::new(
            WarningKind::Deprecated,
            format!(
                "Ponto is phasing out its connection to {}: once the consent ends this account \
                 stops syncing; link the account again through its replacement institution.",
                institution.name
            ),
        ));
    }
    // Maintenance is known only when the institution was read; the account's availability
    // says it too.
    if let Some(m) = &maintenance {
        batch.warnings.push(Warning::new(
            WarningKind::Maintenance,
            format!(
                "{} is in maintenance ({}{}); data may be stale.",
                institution.name,
                m.kind,
                m.ends_at
                    .as_deref()
                    .map(|t| format!(" until {}", local_time(t, tz)))
                    .unwrap_or_default()
            ),
        ));
    } else if account.availability != crate::bindings::types::Availability::Available {
        batch.warnings.push(Warning::new(
            WarningKind::Maintenance,
            "The bank is in maintenance: Ponto serves the data it holds, no fresh data comes in.",
        ));
    }
    // The consent has ended when its expected end has passed, or when Ponto's last
    // synchronization of the account was refused for it (whatever the date says) after the
    // consent was last given (a renewal makes an older refusal stale).
    let latest = resource
        .meta
        .as_ref()
        .and_then(|m| m.get("latestSynchronization"));
    let instant = |t: Option<&str>| t.and_then(crate::jsonapi::When::parse).map(|w| w.instant());
    let refused_at = latest
        .filter(|l| {
            l.pointer("/attributes/errors")
                .and_then(|e| e.as_array())
                .is_some_and(|errors| {
                    errors.iter().any(|e| {
                        matches!(
                            e.get("code").and_then(|c| c.as_str()),
                            Some("authorizationInvalid" | "authorizationExpired")
                        )
                    })
                })
        })
        .map(|l| {
            ["/attributes/updatedAt", "/attributes/createdAt"]
                .iter()
                .find_map(|p| instant(l.pointer(p).and_then(|v| v.as_str())))
        });
    let consent_refused = match (refused_at, instant(account.authorized_at.as_deref())) {
        (None, _) => false,
        (Some(Some(refused)), Some(given)) => refused > given,
        // Undated, or no date of consent: the refusal stands.
        (Some(_), _) => true,
    };
    let expires = account.consent_expires_at.as_deref();
    let days = account.consent_days_left;
    let authorized_at = account.authorized_at.as_deref();
    if consent_refused || days.is_some_and(|d| d < 0) {
        return Err(consent_error(
            api,
            account_id,
            expires.map(str::to_string),
            authorized_at,
        ));
    }
    forget_reauthorization(api, account_id);
    if let (Some(expires), Some(days)) = (expires, days)
        && days <= CONSENT_WARNING_DAYS
    {
        batch.warnings.push(Warning::new(
            WarningKind::ConsentExpiring,
            format!(
                "The bank consent of account {} ends on {} ({days} day{} left). \
                 Re-authorise it on Ponto's website (every 180 days) to keep syncing.",
                account.reference,
                local_day(expires, tz),
                if days == 1 { "" } else { "s" },
            ),
        ));
    }
    let current = match &account.current_balance {
        Some(b) => Some(Decimal::parse(&b.amount).map_err(|e| {
            ProviderError::malformed("account", Some("currentBalance"), Some(account_id), e)
        })?),
        None => {
            batch.warnings.push(Warning::new(
                WarningKind::Other,
                "The bank gives no balance for this account: lines are imported, but no \
                 statement balances can be derived.",
            ));
            None
        }
    };
    let overlap = Days::new(u64::from(api.config.overlap_days));
    // A watermark an older version took from a line dated 9999-12-31 would end every walk at
    // once: such a state is dropped, and this sync walks as a first one does.
    let today = now.with_timezone(&tz).date_naive();
    let prev = prev.filter(|p| p.watermark.is_none_or(|w| plausible(w, today)));
    let from_state = match prev.as_ref().and_then(|p| p.watermark) {
        None => None,
        Some(w) => Some(w.checked_sub_days(overlap).ok_or_else(|| {
            ProviderError::argument("state", format!("the watermark {w} is out of range"))
        })?),
    };
    // `since` asks to read back at least that far: the earlier of the two wins.
    let stop = match (from_state, since) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let stamp = now.format("%Y%m%dT%H%M%SZ");
    let newest = prev.as_ref().and_then(|p| p.watermark);
    let same_zone = prev
        .as_ref()
        .and_then(|p| p.institution.as_ref())
        .is_some_and(|i| i.time_zone == institution.time_zone);
    let known = match prev.as_ref() {
        Some(SyncState {
            last_id: Some(id),
            balance: Some(balance),
            newest,
            ..
        }) if !walk_due && since.is_none() && same_zone && current.is_some() => Some(Known {
            id: id.clone(),
            balance: *balance,
            newest: newest.clone(),
        }),
        _ => None,
    };
    let read_pending =
        known.is_none() || asked_refresh || prev.as_ref().is_none_or(|p| p.pending_read.is_none());
    let latest_sync = resource
        .meta
        .as_ref()
        .and_then(|m| m.get("latestSynchronization"))
        .filter(|v| !v.is_null())
        .cloned();
    let mut cursor = Cursor {
        account_id: account_id.to_string(),
        phase: Phase::Transactions,
        next: None,
        stop,
        stopping: false,
        tz: institution.time_zone.clone(),
        date_field: api.config.date_field,
        grouping: api.config.grouping,
        sync_key: format!("sync-{stamp}"),
        // Named in the institution's time, as its dates are.
        sync_name: format!("Ponto sync {}", local_time(&timestamp(now), tz)),
        currency: account.currency.clone(),
        current,
        running: current,
        open: None,
        sync_id,
        read: 0,
        prev,
        newest,
        window: Vec::new(),
        overlap: api.config.overlap_days,
        sum_since_anchor: Decimal::ZERO,
        advice: api.advice.borrow().clone(),
        recent_pages: Vec::new(),
        pages: 0,
        known,
        ended_at_known: false,
        first_id: None,
        first_key: None,
        first: None,
        read_pending,
        synchronizations: Vec::new(),
        institution: Some(institution),
        taken: Taken::default(),
    };
    match latest_sync {
        Some(sync) => cursor.note_synchronization(Some(&sync)),
        // Ponto names no synchronization: nothing tells whether the list changed.
        None => cursor.read_pending = true,
    }
    Ok((cursor, account))
}
