"""`interface http`: outbound HTTP on the plugin's behalf, through urllib3.

The host owns what a plugin must not: the origin allowlist (checked on every request; redirects
are never followed, so a 3xx cannot lead off the list), plain http only to loopback, TLS with
optional client certificates (Ponto's mutual TLS), a timeout and a response size cap. One audit
line per request goes to `logging`: method, origin and path, status, size, time; never header
values, query values or bodies (they carry tokens).
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Optional, Union
from urllib.parse import urlsplit, urlunsplit

import urllib3
from wasmtime.component import Record, Variant

log = logging.getLogger("erp_bank_sync.http")

# Request headers the host sets itself (framing and virtual host), as in the Rust host.
RESERVED_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
METHODS = {"get": "GET", "post": "POST", "put": "PUT", "patch": "PATCH", "delete": "DELETE"}


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class AllowedOrigin:
    """`https://host`, `https://host:8443`, or `http://127.0.0.1:*` (any port: loopback only)."""

    scheme: str
    host: str
    port: Optional[int]

    @classmethod
    def parse(cls, text: str) -> "AllowedOrigin":
        scheme, sep, rest = text.partition("://")
        scheme = scheme.lower()
        if not sep or scheme not in ("http", "https"):
            raise ValueError(f"`{text}`: only http and https origins can be granted")
        host, port = rest, None
        if rest.endswith(":*"):
            host = rest[:-2]
        elif ":" in rest.rsplit("]", 1)[-1]:
            host, _, p = rest.rpartition(":")
            port = int(p)
        else:
            port = 443 if scheme == "https" else 80
        if not host or "/" in host:
            raise ValueError(f"`{text}`: an origin has no path")
        loopback = is_loopback_host(host)
        if scheme == "http" and not loopback:
            raise ValueError(f"`{text}`: plain http is allowed only to loopback addresses")
        if port is None and not loopback:
            raise ValueError(f"`{text}`: any-port origins are allowed only on loopback")
        return cls(scheme, host.strip("[]").lower(), port)

    def matches(self, scheme: str, host: str, port: int) -> bool:
        return (
            self.scheme == scheme.lower()
            and self.host == host.lower()
            and (self.port is None or self.port == port)
        )

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{'*' if self.port is None else self.port}"


@dataclass
class HttpPolicy:
    allowed: list[AllowedOrigin] = field(default_factory=list)
    timeout_s: float = 30.0
    max_response_bytes: int = 16 * 1024 * 1024
    # host -> (certificate PEM path, key PEM path): presented to that host only.
    client_certificates: dict[str, tuple[str, str]] = field(default_factory=dict)


def _err(case: str, payload: object = None) -> Variant:
    return Variant(case, payload)


class HttpCapability:
    def __init__(self, policy: HttpPolicy, plugin: str):
        self.policy = policy
        self.plugin = plugin
        # No retries, no redirects: a 3xx comes back to the plugin as a response.
        common = dict(retries=False, maxsize=4)
        self._pool = urllib3.PoolManager(**common)
        self._with_cert = {
            host.lower(): urllib3.PoolManager(cert_file=cert, key_file=key, **common)
            for host, (cert, key) in policy.client_certificates.items()
        }

    def send(self, _store: object, request: object) -> object:
        """WIT `send(request) -> result<response, http-error>`."""
        started = time.monotonic()
        method = METHODS.get(getattr(request, "method"), "GET")
        url = getattr(request, "url")
        try:
            outcome = self._send(request, method, url)
        except Exception as e:  # never into the guest: an exception would poison the instance
            outcome = _err("transport", f"host error: {type(e).__name__}")
        parts = urlsplit(url) if isinstance(url, str) else None
        where = f"{parts.scheme}://{parts.netloc}{parts.path}" if parts else "?"
        if isinstance(outcome, Variant):
            what = outcome.tag
        else:
            what = f"{getattr(outcome, 'status')} ({_len(getattr(outcome, 'body'))} bytes)"
        log.info(
            "%s %s -> %s in %d ms",
            method,
            where,
            what,
            (time.monotonic() - started) * 1000,
            extra={"plugin": self.plugin},
        )
        return outcome

    def _check_url(self, url: str) -> Union[str, Variant]:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as e:
            return _err("invalid-request", f"unparsable URL: {e}")
        if parts.username is not None or parts.password is not None:
            return _err(
                "invalid-request",
                "URLs with user info (user:password@) are refused; send credentials in a header",
            )
        scheme, host = parts.scheme.lower(), (parts.hostname or "")
        if scheme not in ("http", "https") or not host:
            return _err("denied", f"{scheme}://{host} is not an http(s) origin")
        port = port or (443 if scheme == "https" else 80)
        origin = f"{scheme}://{host}:{port}"
        if scheme == "http" and not is_loopback_host(host):
            return _err(
                "denied", f"{origin} is refused: plain http is allowed only to loopback addresses"
            )
        if not any(o.matches(scheme, host, port) for o in self.policy.allowed):
            return _err("denied", f"{origin} is not granted to plugin `{self.plugin}`")
        return host

    def _send(self, request: object, method: str, url: str) -> object:
        host = self._check_url(url)
        if isinstance(host, Variant):
            return host
        headers = []
        for name, value in getattr(request, "headers"):
            if not _TOKEN.match(name):
                return _err("invalid-request", f"`{name}` is not a valid header name")
            if any(c in value for c in "\r\n\0"):
                # The value may be a secret: name the header only.
                return _err(
                    "invalid-request",
                    f"the value of header `{name}` has characters not allowed in a header",
                )
            if name.lower() in RESERVED_HEADERS:
                return _err("invalid-request", f"header `{name}` is set by the host; leave it out")
            headers.append((name, value))
        body = getattr(request, "body")
        data = body.encode() if isinstance(body, str) else bytes(body)
        requested = getattr(request, "timeout-ms")
        timeout = self.policy.timeout_s
        if requested is not None:
            timeout = max(min(timeout, requested / 1000), 0.001)
        parts = urlsplit(url)
        target = urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))
        pool = self._with_cert.get(host.lower(), self._pool)
        cap = self.policy.max_response_bytes
        try:
            response = pool.request(
                method,
                target,
                body=data if (data or method not in ("GET", "DELETE")) else None,
                headers=urllib3.HTTPHeaderDict(headers),
                redirect=False,
                preload_content=False,
                timeout=urllib3.Timeout(total=timeout),
            )
        except (urllib3.exceptions.TimeoutError, TimeoutError):
            return _err("timeout")
        except urllib3.exceptions.HTTPError as e:
            return _err("transport", _one_line(e))
        try:
            length = response.headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > cap:
                return _err("too-large", cap)
            chunks, size = [], 0
            # Read one byte past the cap to tell "exactly the cap" from "over it", never more.
            for chunk in response.stream(64 * 1024):
                chunks.append(chunk)
                size += len(chunk)
                if size > cap:
                    return _err("too-large", cap)
            raw = b"".join(chunks)
        except (urllib3.exceptions.TimeoutError, TimeoutError):
            return _err("timeout")
        except urllib3.exceptions.HTTPError as e:
            return _err("transport", _one_line(e))
        finally:
            response.release_conn()
        out = Record()
        out.status = response.status
        out.headers = [(k.lower(), v) for k, v in response.headers.items()]
        # Text exactly when the bytes are UTF-8 (http.wit): Ponto's always are.
        try:
            out.body = raw.decode("utf-8")
        except UnicodeDecodeError:
            out.body = raw
        return out


def _len(body: object) -> int:
    return len(body.encode()) if isinstance(body, str) else len(body)  # type: ignore[arg-type]


def _one_line(e: Exception) -> str:
    # urllib3's messages name the pool and the error, never the query string's values.
    text = " ".join(str(e).split())
    return re.sub(r"url: \S+", "url: (hidden)", text)[:300]
