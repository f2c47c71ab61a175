//! Settings read through the host's `config` capability. Every value is validated when read, and a
//! bad one is an `invalid-argument` naming the key.

use crate::bindings::Result;
use crate::bindings::types::ProviderError;
use crate::imports::Imports;
use serde::{Deserialize, Serialize};

/// Every key the provider reads (provider-info `config-keys`).
pub const CONFIG_KEYS: &[&str] = &[
    "api-url",
    "authorization-url",
    "client-id",
    "client-secret",
    "date-field",
    "statement-grouping",
    "overlap-days",
    "overlap-walk-hours",
    "page-size",
    "sync-poll-attempts",
    "sync-poll-interval-ms",
];

/// Default Ponto Connect API base.
pub const DEFAULT_API_URL: &str = "https://api.ibanity.com/ponto-connect";
/// Default browser authorization page.
pub const DEFAULT_AUTHORIZATION_URL: &str = "https://authorization.myponto.com/oauth2/auth";

/// Which transaction date becomes the booking date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DateField {
    Execution,
    Value,
}

/// How lines are grouped into statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Grouping {
    Day,
    Week,
    Month,
    Sync,
}

/// The validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub api_url: String,
    pub authorization_url: String,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub date_field: DateField,
    pub grouping: Grouping,
    pub overlap_days: u32,
    /// An incremental sync walks the whole overlap again once the last such walk is this old.
    pub overlap_walk_hours: u32,
    pub page_size: u32,
    pub poll_attempts: u32,
    pub poll_interval_ms: u32,
}

fn number(host: &dyn Imports, key: &str, default: u32, min: u32, max: u32) -> Result<u32> {
    match host.config(key) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ProviderError::argument(
                key,
                format!("`{v}` is not a whole number from {min} to {max}"),
            )),
        },
    }
}

fn base_url(host: &dyn Imports, key: &str, default: &str) -> Result<String> {
    let v = host.config(key).unwrap_or_else(|| default.to_string());
    let v = v.trim().trim_end_matches('/').to_string();
    if crate::url::origin(&v).is_none() {
        return Err(ProviderError::argument(
            key,
            format!("`{v}` is not an absolute http(s) URL"),
        ));
    }
    Ok(v)
}

impl Config {
    /// Reads and validates every setting.
    pub fn load(host: &dyn Imports) -> Result<Config> {
        let date_field = match host.config("date-field").as_deref().map(str::trim) {
            None | Some("execution") => DateField::Execution,
            Some("value") => DateField::Value,
            Some(other) => {
                return Err(ProviderError::argument(
                    "date-field",
                    format!("`{other}` is neither `execution` nor `value`"),
                ));
            }
        };
        let grouping = match host.config("statement-grouping").as_deref().map(str::trim) {
            None | Some("day") => Grouping::Day,
            Some("week") => Grouping::Week,
            Some("month") => Grouping::Month,
            Some("sync") => Grouping::Sync,
            Some(other) => {
                return Err(ProviderError::argument(
                    "statement-grouping",
                    format!("`{other}` is not one of day, week, month, sync"),
                ));
            }
        };
        let non_empty = |k: &str| host.config(k).filter(|v| !v.trim().is_empty());
        Ok(Config {
            api_url: base_url(host, "api-url", DEFAULT_API_URL)?,
            authorization_url: base_url(host, "authorization-url", DEFAULT_AUTHORIZATION_URL)?,
            client_id: non_empty("client-id"),
            client_secret: non_empty("client-secret"),
            date_field,
            grouping,
            overlap_days: number(host, "overlap-days", 7, 0, 366)?,
            overlap_walk_hours: number(host, "overlap-walk-hours", 24, 0, 8760)?,
            page_size: number(host, "page-size", 100, 1, 100)?,
            poll_attempts: number(host, "sync-poll-attempts", 10, 0, 100)?,
            poll_interval_ms: number(host, "sync-poll-interval-ms", 1000, 0, 60_000)?,
        })
    }

    /// Client id and secret, or an error naming the missing key.
    pub fn credentials(&self) -> Result<(&str, &str)> {
        let id = self.client_id.as_deref().ok_or_else(|| {
            ProviderError::argument(
                "client-id",
                "not set: the Ponto Connect client id is required",
            )
        })?;
        let secret = self.client_secret.as_deref().ok_or_else(|| {
            ProviderError::argument(
                "client-secret",
                "not set: the Ponto Connect client secret is required",
            )
        })?;
        Ok((id, secret))
    }
}
