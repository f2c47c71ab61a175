"""The capabilities' rules, called directly (no wasm), as the Rust host's unit tests do."""

from __future__ import annotations

import http.server
import logging
import threading

import pytest
from wasmtime.component import Record, Variant

from erp_bank_sync.capabilities.config import ConfigCapability
from erp_bank_sync.capabilities.http import AllowedOrigin, HttpCapability, HttpPolicy
from erp_bank_sync.capabilities.log import LogCapability
from erp_bank_sync.capabilities.storage import Quota, StorageCapability


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        routes = {
            "/json": (200, [("Content-Type", "application/json")], '{"naïve":1}'.encode()),
            "/bytes": (200, [], b"\xff\xfe\x00"),
            "/redirect": (302, [("Location", "https://evil.example.com/")], b""),
            "/big": (200, [], b"x" * 2000),
        }
        if self.path == "/slow":
            threading.Event().wait(1.0)
        status, headers, body = routes.get(self.path, (200, [], b"slow"))
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except BrokenPipeError:  # the client gave up (timeout test)
            pass

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def request(url, headers=(), timeout_ms=None):
    r = Record()
    r.method, r.url, r.headers, r.body = "get", url, list(headers), ""
    setattr(r, "timeout-ms", timeout_ms)
    return r


def cap(*origins, max_bytes=1000):
    return HttpCapability(HttpPolicy([AllowedOrigin.parse(o) for o in origins], 30.0, max_bytes), "ponto")


def test_bodies_cross_as_text_when_utf8_and_as_bytes_otherwise(server):
    http = cap("http://127.0.0.1:*")
    json = http.send(None, request(server + "/json"))
    assert (json.status, json.body) == (200, '{"naïve":1}')
    assert ("content-type", "application/json") in json.headers
    assert http.send(None, request(server + "/bytes")).body == b"\xff\xfe\x00"


def test_origins_are_checked_and_redirects_not_followed(server):
    assert cap("http://127.0.0.1:1").send(None, request(server + "/json")).tag == "denied"
    denied = cap("https://api.ibanity.com").send(None, request("http://api.ibanity.com/x"))
    assert denied.tag == "denied" and "loopback" in denied.payload
    redirect = cap("http://127.0.0.1:*").send(None, request(server + "/redirect"))
    assert redirect.status == 302, "a 3xx comes back as a response"
    with pytest.raises(ValueError):
        AllowedOrigin.parse("http://example.com")


def test_size_cap_timeout_and_bad_requests(server):
    http = cap("http://127.0.0.1:*", max_bytes=1000)
    assert http.send(None, request(server + "/big")) == Variant("too-large", 1000)
    assert http.send(None, request(server + "/slow", timeout_ms=100)).tag == "timeout"
    bad = http.send(None, request(server + "/json", headers=[("Host", "x")]))
    assert bad.tag == "invalid-request"
    secret = http.send(None, request(server + "/json", headers=[("Authorization", "Bearer T\r\nX")]))
    assert secret.tag == "invalid-request" and "Bearer" not in secret.payload
    assert http.send(None, request("http://u:p@127.0.0.1/")).tag == "invalid-request"


def test_the_audit_line_has_no_query_values(server, caplog):
    with caplog.at_level(logging.INFO, logger="erp_bank_sync.http"):
        cap("http://127.0.0.1:*").send(None, request(server + "/json?code=SECRET"))
    assert "/json" in caplog.text and "SECRET" not in caplog.text


def test_compare_and_swap_rotates_once_and_quotas_hold(tmp_path):
    a = StorageCapability(str(tmp_path / "kv.sqlite"), "ponto", "c", Quota(max_keys=2, max_value_bytes=8))
    b = StorageCapability(str(tmp_path / "kv.sqlite"), "ponto", "c")
    other = StorageCapability(str(tmp_path / "kv.sqlite"), "ponto", "other")
    assert a.compare_and_swap(None, "rt", None, "r1") is True
    assert a.compare_and_swap(None, "rt", "r1", "r2") is True
    assert b.compare_and_swap(None, "rt", "r1", "r3") is False  # the loser of a race
    assert b.get(None, "rt") == "r2" and other.get(None, "rt") is None
    assert a.set(None, "big", "123456789") == Variant("quota-exceeded", "a value is limited to 8 bytes")
    assert a.set(None, "k2", "v") is None
    assert a.set(None, "k3", "v").tag == "quota-exceeded"
    assert a.list_keys(None, "") == ["k2", "rt"]
    assert b.compare_and_swap(None, "rt", "r2", None) is True and a.get(None, "rt") is None


def test_log_is_throttled_cut_and_neutralised(caplog):
    log = LogCapability("ponto", "c", burst=3, per_second=0)
    with caplog.at_level(logging.DEBUG, logger="erp_bank_sync.plugin"):
        for i in range(10):
            log.write(None, "info", f"line {i}\x1b[31m")
    assert (log.written, log.dropped) == (3, 7)
    assert "\x1b" not in caplog.text and "\\x1b" in caplog.text


def test_config_is_read_only():
    values = {"client-id": "abc"}
    config = ConfigCapability(values)
    values["client-id"] = "changed"
    assert config.get(None, "client-id") == "abc" and config.get(None, "client-secret") is None
    with pytest.raises(TypeError):
        config.values["client-id"] = "x"  # type: ignore[index]
