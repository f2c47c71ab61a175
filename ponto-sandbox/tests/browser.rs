//! The consent page in a real headless Chromium, driven over W3C WebDriver (Debian's
//! chromedriver) with plain HTTP calls: tick an account, submit, land on redirect_uri with
//! code and state, and exchange the code.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use ponto_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Kills the chromedriver this test started (by its own handle, nothing else).
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wd(method: &str, url: &str, body: Option<Value>) -> Value {
    let agent = agent();
    let resp = match (method, body) {
        ("GET", _) => agent.get(url).call(),
        ("DELETE", _) => agent.delete(url).call(),
        (_, b) => agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(b.unwrap_or(json!({})).to_string()),
    };
    let mut r = resp.unwrap_or_else(|e| panic!("WebDriver {method} {url}: {e}"));
    let text = r.body_mut().read_to_string().unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert!(r.status().is_success(), "WebDriver {method} {url}: {text}");
    v["value"].clone()
}

#[test]
fn consent_page_in_headless_chromium() {
    for bin in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            std::path::Path::new(bin).exists(),
            "{bin} is missing: install it with `apt-get update && apt-get install -y chromium chromium-driver`"
        );
    }
    let sb = Sandbox::start(SandboxConfig::default(), 0).unwrap();
    let accounts = sb.accounts();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _driver = Driver(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let wd_url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while agent().get(&format!("{wd_url}/status")).call().is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let profile =
        std::env::temp_dir().join(format!("ponto-sandbox-chromium-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    let session = wd(
        "POST",
        &format!("{wd_url}/session"),
        Some(
            json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         format!("--user-data-dir={}", profile.display())]
            }}}}),
        ),
    );
    let sid = session["sessionId"]
        .as_str()
        .expect("session id")
        .to_string();
    let s = format!("{wd_url}/session/{sid}");

    let (verifier, challenge) = pkce("browser");
    let redirect = format!("{}/callback", sb.base_url());
    let consent = format!(
        "{}?client_id=sandbox-client-id&redirect_uri={}&response_type=code&scope=ai%20offline_access&state=browser-state&code_challenge={challenge}&code_challenge_method=S256",
        sb.auth_url(),
        form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
    );
    wd("POST", &format!("{s}/url"), Some(json!({"url": consent})));
    let title = wd("GET", &format!("{s}/title"), None);
    assert!(title.as_str().unwrap_or("").contains("Ponto"), "{title}");
    let boxes = wd(
        "POST",
        &format!("{s}/elements"),
        Some(json!({"using": "css selector", "value": "input[type=checkbox][name=account]"})),
    );
    assert_eq!(
        boxes.as_array().unwrap().len(),
        accounts.len(),
        "one checkbox per account"
    );
    // Tick the first and third accounts.
    for a in [&accounts[0], &accounts[2]] {
        let el = wd(
            "POST",
            &format!("{s}/element"),
            Some(
                json!({"using": "css selector", "value": format!("input[name=account][value=\"{}\"]", a.id)}),
            ),
        );
        let eid = el[ELEMENT].as_str().unwrap().to_string();
        wd("POST", &format!("{s}/element/{eid}/click"), None);
        assert_eq!(
            wd("GET", &format!("{s}/element/{eid}/selected"), None),
            json!(true)
        );
    }
    let allow = wd(
        "POST",
        &format!("{s}/element"),
        Some(json!({"using": "css selector", "value": "#allow"})),
    );
    wd(
        "POST",
        &format!("{s}/element/{}/click", allow[ELEMENT].as_str().unwrap()),
        None,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let landed = loop {
        let u = wd("GET", &format!("{s}/url"), None)
            .as_str()
            .unwrap_or("")
            .to_string();
        if u.starts_with(&redirect) {
            break u;
        }
        assert!(
            Instant::now() < deadline,
            "no redirect to {redirect}; at {u}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = wd("DELETE", &s, None);
    let _ = std::fs::remove_dir_all(&profile);

    let query = landed.split_once('?').unwrap().1;
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get_p = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get_p("state").as_deref(), Some("browser-state"));
    let code = get_p("code").expect("code in the redirect");
    let r = post_form(
        &token_url(&sb),
        Some(&client_auth()),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect),
            ("code_verifier", &verifier),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.json()["access_token"].as_str().unwrap().to_string();
    let listed = get(&format!("{}/accounts", sb.api_url()), Some(&token)).json();
    let mut ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut want = vec![accounts[0].id.as_str(), accounts[2].id.as_str()];
    want.sort();
    assert_eq!(ids, want, "the token sees exactly the ticked accounts");
}
