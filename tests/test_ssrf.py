"""Calendar import never reaches an internal address (#11 §5): only public addresses, the
connection goes to the address that was checked (no second look-up), every redirect hop is
checked."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from booking.calendars import importer
from booking.calendars.importer import ImportFailure, address_allowed, fetch
from tests.conftest import free_port

REFUSED = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # carrier-grade NAT
    "192.0.0.8",  # IETF protocol assignments
    "198.18.0.1",  # benchmarking
    "192.88.99.1",  # 6to4 relay anycast
    "0.0.0.0",
    "240.0.0.1",
    "255.255.255.255",
    "224.0.0.1",
    "::1",
    "::",
    "fc00::1",
    "fe80::1",
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "2002:7f00:1::",  # 6to4 form of 127.0.0.1
    "2002:a00:1::",  # 6to4 form of 10.0.0.1
    "64:ff9b::7f00:1",  # NAT64 form of 127.0.0.1
    "64:ff9b:1::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "2001:db8::1",
    "ff02::1",
]
ALLOWED = ["8.8.8.8", "114.114.114.114", "2400:3200::1", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", REFUSED)
def test_internal_and_special_addresses_are_refused(address):
    assert not address_allowed(address)


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address):
    assert address_allowed(address)


class FakeDNS:
    """getaddrinfo that answers from a table and counts the questions (DNS rebinding: the
    first answer is public, every later one points inside)."""

    def __init__(self, answers: dict[str, list[str]]):
        self.answers = answers
        self.asked: list[str] = []
        self.connected: list[tuple[str, int]] = []

    def getaddrinfo(self, host, port, *args, **kwargs):
        self.asked.append(host)
        answers = self.answers[host]
        address = answers[min(len(self.asked), len(answers)) - 1]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    def create_connection(self, address, *args, **kwargs):
        self.connected.append(address)
        raise ConnectionRefusedError("test: no real connection")


@pytest.fixture
def dns(monkeypatch):
    fake = FakeDNS({"rebind.example": ["8.8.8.8", "127.0.0.1"], "inside.example": ["10.0.0.5"]})
    monkeypatch.setattr(importer.socket, "getaddrinfo", fake.getaddrinfo)
    monkeypatch.setattr(importer.socket, "create_connection", fake.create_connection)
    return fake


def test_the_connection_goes_to_the_checked_address_after_one_look_up(dns):
    with pytest.raises(ImportFailure) as failure:
        fetch("http://rebind.example/cal.ics", timeout=1, max_bytes=1000, allow_private=False)
    assert failure.value.code == "unreachable"  # the fake refuses every connection
    assert dns.asked == ["rebind.example"]  # one look-up for the hop
    assert dns.connected == [("8.8.8.8", 80)]  # to the address that was checked


def test_a_host_with_any_private_answer_is_refused_without_connecting(dns):
    with pytest.raises(ImportFailure) as failure:
        fetch("https://inside.example/cal.ics", timeout=1, max_bytes=1000, allow_private=False)
    assert failure.value.code == "private_address" and dns.connected == []


@pytest.fixture
def redirecting_server():
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(302)
            self.send_header("Location", "http://inside.example/cal.ics")
            self.end_headers()

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield port
    server.shutdown()


def test_every_redirect_hop_is_checked(monkeypatch, redirecting_server):
    """A public server (here: 127.0.0.1, let through for the test) that redirects inside."""
    real_getaddrinfo = socket.getaddrinfo
    fake = FakeDNS({"inside.example": ["10.0.0.5"]})

    def getaddrinfo(host, port, *args, **kwargs):
        if host == "127.0.0.1":
            return real_getaddrinfo(host, port, *args, **kwargs)
        return fake.getaddrinfo(host, port)

    original = importer.address_allowed
    monkeypatch.setattr(importer.socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(importer, "address_allowed", lambda a: a == "127.0.0.1" or original(a))
    with pytest.raises(ImportFailure) as failure:
        fetch(
            f"http://127.0.0.1:{redirecting_server}/cal.ics",
            timeout=2,
            max_bytes=1000,
            allow_private=False,
        )
    assert failure.value.code == "private_address"
    assert fake.asked == ["inside.example"]


def test_no_proxy_from_the_environment_is_used(monkeypatch, dns):
    monkeypatch.setenv("http_proxy", "http://10.0.0.1:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://10.0.0.1:3128")
    with pytest.raises(ImportFailure):
        fetch("http://rebind.example/cal.ics", timeout=1, max_bytes=1000, allow_private=False)
    assert dns.connected == [("8.8.8.8", 80)]


@pytest.fixture
def dripping_server():
    """Sends a valid header, then one byte of body every 0.3 s."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(100000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.3)
            except OSError:
                pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield port
    server.shutdown()


def test_a_server_that_drips_is_stopped_at_the_overall_deadline(dripping_server):
    began = time.monotonic()
    with pytest.raises(ImportFailure) as failure:
        fetch(
            f"http://127.0.0.1:{dripping_server}/cal.ics",
            timeout=1,  # each byte comes well within it; the whole download may take 3 s
            max_bytes=1_000_000,
            allow_private=True,
        )
    assert failure.value.code == "timeout"
    assert time.monotonic() - began < 6
