"""Development helpers: start the Ponto sandbox (`erp-dev sandbox`) and fill its consent page, as
`erp-dev consent` does. Not for production: a real user consents in a browser."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit

import urllib3

REPO = Path(__file__).resolve().parents[4]


def erp_binary(profile: str = "debug", name: str = "erp") -> Path:
    """`target/<profile>/<name>` (`erp`, or the development tools' `erp-dev`), built if missing."""
    path = REPO / "target" / profile / name
    if not path.exists():
        package = "erp-devkit" if name == "erp-dev" else "host-harness"
        args = ["cargo", "build", "-j2", "--locked", "-p", package, "--bin", name]
        if profile == "release":
            args.append("--release")
        subprocess.run(args, cwd=REPO, check=True)
    return path


@dataclass
class Sandbox:
    """A running `erp-dev sandbox` process on a free loopback port."""

    process: subprocess.Popen
    base_url: str

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/ponto-connect"

    @property
    def auth_url(self) -> str:
        return f"{self.base_url}/oauth2/auth"

    def provider_config(self) -> dict[str, str]:
        """The provider settings that point the Ponto provider at this sandbox."""
        return {
            "api-url": self.api_url,
            "authorization-url": self.auth_url,
            "client-id": "sandbox-client-id",
            "client-secret": "sandbox-client-secret",
            "sync-poll-interval-ms": "200",
        }

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)

    @classmethod
    def start(cls, seed: int = 42, transactions: int | None = None, profile: str = "debug") -> "Sandbox":
        args = [str(erp_binary(profile, "erp-dev")), "sandbox", "--port", "0", "--seed", str(seed)]
        if transactions is not None:
            args += ["--transactions", str(transactions)]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=dict(os.environ))
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on (http://\S+)", line)
        if not match:
            proc.kill()
            raise RuntimeError(f"the sandbox did not start: {line!r}")
        return cls(proc, match.group(1))


class _ConsentForm(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: list[tuple[str, str]] = []
        self.accounts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None and "action" in a:
            self.action = a["action"]
        elif tag == "input" and "name" in a:
            kind = a.get("type", "text").lower()
            if kind == "hidden":
                self.fields.append((a["name"], a.get("value", "")))
            elif kind == "checkbox" and a["name"] == "account":
                self.accounts += 1
                self.fields.append((a["name"], a.get("value", "")))


def auto_consent(authorization_url: str) -> str:
    """Open the sandbox's consent page, tick every account, submit; return the callback URL the
    page redirects to (what a browser would land on)."""
    http = urllib3.PoolManager(retries=False)
    page = http.request("GET", authorization_url, redirect=False, timeout=30)
    if page.status != 200:
        raise RuntimeError(f"automatic consent failed: the consent page answered HTTP {page.status}")
    form = _ConsentForm()
    form.feed(page.data.decode())
    if not form.accounts:
        raise RuntimeError("automatic consent failed: the consent page offers no account to tick")
    action = urljoin(authorization_url, form.action or urlsplit(authorization_url).path)
    answer = http.request(
        "POST",
        action,
        body=urlencode(form.fields),
        headers={"content-type": "application/x-www-form-urlencoded"},
        redirect=False,
        timeout=30,
    )
    location = answer.headers.get("location")
    if not location:
        raise RuntimeError(
            f"automatic consent failed: the consent page answered HTTP {answer.status} without a redirect"
        )
    return urljoin(authorization_url, location)




@dataclass
class RustErp:
    """The Rust ERP (`erp` CLI) on its own database, pointed at a sandbox: for the equal-books
    test and the benchmark."""

    binary: Path
    db: Path
    sandbox: Sandbox

    def run(self, *args: str) -> str:
        env = dict(
            os.environ,
            ERP_DB=str(self.db),
            PONTO_API_URL=self.sandbox.api_url,
            PONTO_AUTH_URL=self.sandbox.auth_url,
            PONTO_CLIENT_ID="sandbox-client-id",
            PONTO_CLIENT_SECRET="sandbox-client-secret",
        )
        done = subprocess.run([str(self.binary), *args], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"erp {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def install_provider(self) -> None:
        """Install the packaged Ponto component (built by `cargo build -p erp-devkit`) into this
        ERP's database; unsigned, as a development build is."""
        packaged = REPO / "target" / "wasm" / "packaged" / "ponto_provider.wasm"
        self.run("plugin", "install", str(packaged), "--allow-unsigned", "--yes")

    def connect(self, institution_id: str) -> None:
        """The headless two-step connect, the sandbox's consent page filled in between."""
        if not self.db.exists():
            self.install_provider()
        url = self.run(
            "connect", "begin", "--institution", institution_id,
            "--redirect-uri", "http://127.0.0.1:8765/callback",
        ).strip()
        self.run("connect", "finish", "--callback-url", auto_consent(url))

    def sync(self, customer_ip: str | None = None) -> None:
        self.run("sync", *(["--customer-ip", customer_ip] if customer_ip else []))
