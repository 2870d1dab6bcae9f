"""The shared outbound client: the SSRF guard, the deadline, no redirects."""

import pytest

from common import outbound
from tests.webhooks.receiver import Answer

NON_PUBLIC_URLS = [
    "http://127.0.0.1/hook",
    "http://10.0.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://localhost/hook",  # a host name that resolves to loopback
    "http://192.168.1.10/hook",
    "http://100.64.0.1/hook",
    "http://0.0.0.0/hook",
    "http://224.0.0.1/hook",
    "http://[fe80::1]/hook",
    "http://[fc00::1]/hook",
    "http://[fec0::1]/hook",  # site-local: deprecated, still routed inside some networks
    "http://[feff:ffff::1]/hook",
    "http://2130706433/hook",  # 127.0.0.1 as one decimal number
    "http://0x7f.1/hook",
]


@pytest.mark.parametrize("url", NON_PUBLIC_URLS)
def test_non_public_addresses_are_refused(url, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    with pytest.raises(outbound.UnsafeUrl, match="non-public"):
        outbound.validate_public_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "gopher://example.com/",
        "http://user:pass@example.com/hook",
        "http://example.com@127.0.0.1/hook",
        "http://example.com/hook\r\nX-Injected: 1",
        "http://example.com/ hook",
        "http://example.com\\@127.0.0.1/",
        "http:///hook",
        "http://example.com:99999/hook",
        "not a url",
    ],
)
def test_malformed_or_tricky_urls_are_refused(url, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    with pytest.raises(outbound.UnsafeUrl):
        outbound.validate_public_url(url)


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "2606:4700:4700::1111", "93.184.216.34"],
)
def test_public_addresses_are_public(address):
    assert outbound.is_public_address(address)


@pytest.mark.parametrize(
    "address",
    ["::ffff:10.0.0.1", "2002:7f00:1::", "::", "::ffff:169.254.169.254", "198.18.0.1", "240.0.0.1"],
)
def test_addresses_hidden_in_other_forms_are_not_public(address):
    assert not outbound.is_public_address(address)


def test_the_address_is_checked_again_when_connecting(receiver, settings):
    # Allowed when the URL was given, refused at sending time: nothing reaches the server.
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    with pytest.raises(outbound.UnsafeUrl):
        outbound.post(receiver.url(), body=b"{}")
    assert receiver.received == []


def test_connects_to_the_resolved_address_with_the_host_name_in_host(receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    response = outbound.post(receiver.url(host="localhost"), body=b"{}")
    assert response.status_code == 200
    assert receiver.received[0].headers["host"] == f"localhost:{receiver.port}"
    assert response.connected_address in ("127.0.0.1", "::1")


def test_a_redirect_is_returned_not_followed(receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    receiver.answer(Answer(status=301, headers={"Location": receiver.url("/elsewhere")}))
    response = outbound.post(receiver.url(), body=b"{}")
    assert response.status_code == 301
    assert [r.path for r in receiver.received] == ["/hook"]


def test_a_server_that_hangs_is_cut_at_the_timeout(receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    receiver.answer(Answer(delay=3))
    with pytest.raises(outbound.OutboundError, match=r"within 0\.5 s"):
        outbound.post(receiver.url(), body=b"{}", timeout=0.5)


def test_a_server_that_trickles_its_answer_is_cut_at_the_timeout(settings):
    import socket
    import threading
    import time

    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def trickle():
        conn, _ = listener.accept()
        conn.recv(65536)
        try:
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100:
                conn.sendall(bytes([byte]))
                time.sleep(0.1)
        except OSError:
            pass
        conn.close()

    threading.Thread(target=trickle, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(outbound.OutboundError):
        outbound.post(f"http://127.0.0.1:{port}/", body=b"{}", timeout=0.5)
    assert time.monotonic() - started < 2
    listener.close()


def test_a_long_answer_is_read_only_up_to_the_cap(receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    receiver.answer(Answer(body=b"x" * 5000), Answer(body=b"x" * 5000))
    response = outbound.post(
        receiver.url(), body=b"{}", max_response_bytes=1024, allow_truncated=True
    )
    assert (len(response.body), response.truncated) == (1024, True)
    with pytest.raises(outbound.OutboundError, match="larger than 1024"):
        outbound.post(receiver.url(), body=b"{}", max_response_bytes=1024)


@pytest.mark.parametrize(
    "headers",
    [{"X-Evil": "a\r\nX-Injected: 1"}, {"X Bad": "1"}, {"X-Evil\r\n": "1"}],
)
def test_header_injection_is_refused(headers, receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    with pytest.raises(outbound.UnsafeUrl):
        outbound.post(receiver.url(), body=b"{}", headers=headers)
    assert receiver.received == []


def test_the_host_is_resolved_once_and_the_vetted_address_is_used(receiver, settings, monkeypatch):
    # A rebinding DNS server answers differently the second time; there must be no second time.
    import socket

    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    answers = iter(["127.0.0.1", "10.255.255.1"])
    lookups = []

    def rebinding_getaddrinfo(host, port, *args, **kwargs):
        lookups.append(host)
        address = next(answers)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_getaddrinfo)
    response = outbound.post(receiver.url(host="hooks.customer.test"), body=b"{}")
    assert response.status_code == 200
    assert lookups == ["hooks.customer.test"]
    assert response.connected_address == "127.0.0.1"
    assert receiver.received[0].headers["host"] == f"hooks.customer.test:{receiver.port}"


@pytest.fixture
def tls_receiver(tmp_path, monkeypatch):
    """The receiver behind TLS with a certificate for "localhost", which the client trusts."""
    import ssl
    import subprocess

    from tests.webhooks.receiver import Receiver

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    server = Receiver()
    server.server.socket = server_context.wrap_socket(server.server.socket, server_side=True)
    monkeypatch.setattr(
        outbound, "_tls_context", lambda: ssl.create_default_context(cafile=str(cert))
    )
    yield server.start()
    server.stop()


def test_https_verifies_the_certificate_against_the_host_name(tls_receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    response = outbound.post(f"https://localhost:{tls_receiver.port}/hook", body=b"{}")
    assert response.status_code == 200
    assert tls_receiver.received[0].headers["host"] == f"localhost:{tls_receiver.port}"


def test_https_refuses_a_certificate_for_another_name(tls_receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    with pytest.raises(outbound.OutboundError, match="TLS handshake"):
        outbound.post(f"https://127.0.0.1:{tls_receiver.port}/hook", body=b"{}")
    assert tls_receiver.received == []
