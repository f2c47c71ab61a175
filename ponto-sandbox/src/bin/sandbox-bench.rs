//! Paging benchmark: walks every page of a 1,000,000-transaction account over loopback with a
//! blocking HTTP client and prints transactions/s and the process's peak RSS (server + client;
//! the server's share is therefore at most that).
//!
//! `cargo run --release -p ponto-sandbox --bin sandbox-bench [-- TRANSACTIONS]`

use std::time::Instant;

use ponto_sandbox::{Sandbox, SandboxConfig};
use serde::Deserialize;
use serde::de::IgnoredAny;

#[derive(Deserialize)]
struct Page {
    data: Vec<IgnoredAny>,
    links: Links,
}

#[derive(Deserialize)]
struct Links {
    next: Option<String>,
}

fn vm_hwm_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn main() -> anyhow::Result<()> {
    let n: u64 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    if std::env::args().any(|a| a == "--generate-only") {
        // Cost of deriving and serialising transactions, without HTTP.
        let g = ponto_sandbox::generator::Generator::new(
            42,
            n,
            chrono::NaiveDate::from_ymd_opt(2025, 1, 15).unwrap_or_default(),
        );
        let a = &g.accounts[0];
        let t = Instant::now();
        let recs: Vec<_> = (0..100_000).map(|k| g.booked(a, k)).collect();
        let gen_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut bytes = 0;
        for r in &recs {
            bytes += serde_json::to_vec(&r.attrs)?.len();
        }
        println!(
            "generate: {:.0} tx/s, serialise: {:.0} tx/s ({bytes} bytes)",
            1e5 / gen_s,
            1e5 / t.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let started = Instant::now();
    let sb = Sandbox::start(
        SandboxConfig {
            transactions: n,
            ..SandboxConfig::default()
        },
        0,
    )?;
    let setup = started.elapsed();
    let account = sb.accounts()[0].id.clone();
    let url = format!("{}/ponto-connect/oauth2/token", sb.base_url());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .build()
        .into();

    // Link the account through the scripted consent form and the token endpoint.
    let verifier = "bench-verifier-0123456789abcdefghijklmnopqrstuvwxyz-0123456789";
    let challenge = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
    };
    let redirect = "http://127.0.0.1:9/cb";
    let resp = agent.post(&sb.auth_url()).send_form([
        ("client_id", "sandbox-client-id"),
        ("redirect_uri", redirect),
        ("response_type", "code"),
        ("scope", "ai offline_access"),
        ("state", "bench"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("account", account.as_str()),
    ])?;
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| anyhow::anyhow!("consent did not redirect"))?
        .to_string();
    let code = location
        .split_once("code=")
        .and_then(|(_, r)| r.split('&').next())
        .ok_or_else(|| anyhow::anyhow!("no code in {location}"))?;
    let code: String = form_urlencoded::parse(format!("c={code}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let basic = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode("sandbox-client-id:sandbox-client-secret")
    };
    let mut tok = agent
        .post(&url)
        .header("Authorization", &format!("Basic {basic}"))
        .send_form([
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ])?;
    let tok: serde_json::Value = serde_json::from_reader(tok.body_mut().as_reader())?;
    let access = tok["access_token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no access token: {tok}"))?
        .to_string();
    let bearer = format!("Bearer {access}");

    let mut next = Some(format!(
        "{}/accounts/{account}/transactions?page[limit]=100",
        sb.api_url()
    ));
    let (mut count, mut pages, mut bytes) = (0u64, 0u64, 0u64);
    let walk = Instant::now();
    while let Some(u) = next {
        let mut r = agent.get(&u).header("Authorization", &bearer).call()?;
        let body = r.body_mut().with_config().limit(16 << 20).read_to_vec()?;
        bytes += body.len() as u64;
        let page: Page = serde_json::from_slice(&body)?;
        count += page.data.len() as u64;
        pages += 1;
        next = page.links.next;
    }
    let secs = walk.elapsed().as_secs_f64();
    anyhow::ensure!(count == n, "walked {count} transactions, expected {n}");
    println!(
        "sandbox setup ({n} transactions): {:.3} s",
        setup.as_secs_f64()
    );
    println!(
        "walked {count} transactions in {pages} pages ({:.1} MiB of JSON) in {secs:.2} s",
        bytes as f64 / (1 << 20) as f64
    );
    println!("throughput: {:.0} transactions/s", count as f64 / secs);
    match vm_hwm_kib() {
        Some(k) => println!(
            "peak RSS (VmHWM, server + client in one process): {:.1} MiB",
            k as f64 / 1024.0
        ),
        None => println!("peak RSS: /proc/self/status unavailable"),
    }
    Ok(())
}
