"""The one outbound HTTP client: every request to a customer's or an upstream's server.

A URL given by a customer can point anywhere, including at our own network (SSRF). So:
only http and https; the host is resolved once and refused if any of its addresses is not
public; the connection goes to the vetted address itself (no second DNS lookup a rebinding
attacker could answer differently) while the Host header and TLS (SNI and certificate) use
the name; one total deadline covers connecting, sending and reading; the answer is read up
to a cap; redirects are never followed. `WEBHOOK_ALLOW_PRIVATE_NETWORKS` lifts the address
rule for development and tests only.
"""

import contextlib
import functools
import http.client
import ipaddress
import json
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from django.conf import settings

DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
MAX_URL_LENGTH = 2048
_DEFAULT_PORTS = {"http": 80, "https": 443}
# RFC 9110 token characters for header names.
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_FORBIDDEN_IN_HEADER_VALUE = re.compile(r"[\r\n\x00]")
# Parsers disagree about these; a URL that contains one is refused rather than guessed at.
_FORBIDDEN_IN_URL = re.compile(r"[\x00-\x20\x7f\\]")


class UnsafeUrl(ValueError):
    """The URL may not be called: wrong scheme, malformed, or not a public address."""


class OutboundError(Exception):
    """The request was allowed but did not produce an answer (network error, timeout...)."""


class OutboundTimeout(OutboundError):
    """No complete answer arrived within the request's deadline."""


@dataclass(frozen=True)
class Target:
    """A URL that passed the checks, with the addresses its host resolved to."""

    scheme: str
    hostname: str  # ASCII (IDNA) form, without brackets
    port: int
    path: str  # path and query, as sent on the request line
    addresses: tuple[str, ...] = field(default=())

    @property
    def host_header(self) -> str:
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


@dataclass(frozen=True)
class OutboundResponse:
    status_code: int
    headers: dict[str, str]  # names lower-cased
    body: bytes  # at most the requested cap
    truncated: bool  # the server sent more than `body`
    latency_ms: int
    connected_address: str

    def json(self):
        return json.loads(self.body)


def private_networks_allowed() -> bool:
    return bool(getattr(settings, "WEBHOOK_ALLOW_PRIVATE_NETWORKS", False))


def is_public_address(address: str) -> bool:
    """True for an address that is globally routable, in every form it can hide in."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv4 smuggled inside IPv6 (::ffff:127.0.0.1, 2002:7f00:1::, Teredo) is judged
        # as the IPv4 address it reaches.
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return is_public_address(str(embedded))
    if (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_unspecified
        or ip.is_reserved
        # Site-local (fec0::/10) is deprecated, so ipaddress counts it as global, but some
        # networks still route it internally.
        or getattr(ip, "is_site_local", False)
    ):
        return False
    # is_global also rules out shared (100.64/10) and other special-purpose ranges.
    return ip.is_global


def parse_url(url: str) -> Target:
    """Check the URL's form (not its addresses) and split it into what a request needs."""
    if not isinstance(url, str) or not url:
        raise UnsafeUrl("Enter a URL.")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if _FORBIDDEN_IN_URL.search(url):
        raise UnsafeUrl("The URL contains spaces, control characters or backslashes.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl("The URL is malformed.") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise UnsafeUrl("The URL must start with http:// or https://.")
    if "@" in parts.netloc:
        raise UnsafeUrl("The URL must not contain a user name or password.")
    hostname = parts.hostname
    if not hostname:
        raise UnsafeUrl("The URL has no host.")
    try:
        hostname = hostname.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise UnsafeUrl("The URL's host name is not valid.") from exc
    if port == 0:
        raise UnsafeUrl("The URL's port is not valid.")
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if parts.query:
        path += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    return Target(scheme=scheme, hostname=hostname, port=port or _DEFAULT_PORTS[scheme], path=path)


def resolve(target: Target, *, allow_private_networks: bool | None = None) -> Target:
    """Resolve the host once; refuse it if any address is not public (unless allowed).

    `allow_private_networks` None means the WEBHOOK_ALLOW_PRIVATE_NETWORKS setting.
    """
    if allow_private_networks is None:
        allow_private_networks = private_networks_allowed()
    try:
        infos = socket.getaddrinfo(
            target.hostname, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeUrl(f"The host {target.hostname} could not be resolved.") from exc
    addresses = tuple(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise UnsafeUrl(f"The host {target.hostname} could not be resolved.")
    if not allow_private_networks:
        refused = [address for address in addresses if not is_public_address(address)]
        if refused:
            raise UnsafeUrl(
                f"The URL resolves to a non-public address ({refused[0]}); "
                "only public internet addresses can receive requests."
            )
    return Target(
        scheme=target.scheme,
        hostname=target.hostname,
        port=target.port,
        path=target.path,
        addresses=addresses,
    )


def validate_public_url(url: str, *, allow_private_networks: bool | None = None) -> Target:
    """Raise UnsafeUrl unless `url` is http(s) and its host resolves only to public addresses."""
    return resolve(parse_url(url), allow_private_networks=allow_private_networks)


def _check_headers(headers: dict[str, str]) -> None:
    for name, value in headers.items():
        if not _HEADER_NAME.match(name) or _FORBIDDEN_IN_HEADER_VALUE.search(str(value)):
            raise UnsafeUrl(f"The header {name!r} is not a valid HTTP header.")


class _Deadline:
    """One clock for the whole request; a watchdog closes the socket when it runs out,
    so a server that trickles its answer a byte at a time cannot hold us past it."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.started = time.monotonic()
        self.expired = False
        self._timer: threading.Timer | None = None

    def remaining(self) -> float:
        left = self.seconds - (time.monotonic() - self.started)
        if left <= 0:
            self.expired = True
            raise OutboundTimeout(f"No complete answer within {self.seconds:g} s")
        return left

    def watch(self, sock: socket.socket) -> None:
        def cut():
            self.expired = True
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

        self._timer = threading.Timer(self.remaining(), cut)
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def elapsed_ms(self) -> int:
        return round((time.monotonic() - self.started) * 1000)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Built once: loading the system's CA certificates costs more than a request.
    return ssl.create_default_context()


def _connect(
    target: Target, deadline: _Deadline, *, allow_private_networks: bool
) -> tuple[socket.socket, str]:
    last_error: OSError | None = None
    for address in target.addresses:
        # The address actually connected to is checked again here, at delivery time.
        if not allow_private_networks and not is_public_address(address):
            raise UnsafeUrl(f"Refusing to connect to the non-public address {address}.")
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(deadline.remaining())
        try:
            sock.connect((address, target.port))
        except OSError as exc:
            sock.close()
            last_error = exc
            continue
        if target.scheme == "https":
            try:
                # SNI and certificate verification use the name, not the address.
                sock = _tls_context().wrap_socket(sock, server_hostname=target.hostname)
            except (OSError, ssl.SSLError) as exc:
                sock.close()
                raise OutboundError(f"TLS handshake with {target.hostname} failed: {exc}") from exc
        return sock, address
    raise OutboundError(f"Could not connect to {target.hostname}: {last_error}")


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    allow_truncated: bool = False,
    allow_private_networks: bool | None = None,
) -> OutboundResponse:
    """Send one request and return the answer, whatever its status; never follow redirects.

    Raises UnsafeUrl for a URL or header that may not be sent, and OutboundError when no
    complete answer arrived within `timeout` seconds (connect, send and read together;
    OutboundTimeout then) or the answer is larger than `max_response_bytes` (unless
    `allow_truncated`). `allow_private_networks` None means WEBHOOK_ALLOW_PRIVATE_NETWORKS;
    a caller with its own setting (upstream engines) passes it.
    """
    if allow_private_networks is None:
        allow_private_networks = private_networks_allowed()
    headers = dict(headers or {})
    _check_headers(headers)
    deadline = _Deadline(timeout)
    target = validate_public_url(url, allow_private_networks=allow_private_networks)
    sock, address = _connect(target, deadline, allow_private_networks=allow_private_networks)
    deadline.watch(sock)
    connection = http.client.HTTPConnection(target.hostname, target.port)
    # The socket is already connected to the vetted address: http.client must not look
    # the name up again, only use it for the Host header.
    connection.sock = sock
    try:
        sock.settimeout(deadline.remaining())
        connection.putrequest(method, target.path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", target.host_header)
        for name, value in headers.items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        chunks, size = [], 0
        while size <= max_response_bytes:
            deadline.remaining()  # raises once the deadline has passed
            chunk = response.read(min(65536, max_response_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if deadline.expired:
            # The watchdog cut the socket, which reads as an early end of the answer.
            raise OutboundTimeout(f"No complete answer within {timeout:g} s")
        data = b"".join(chunks)
        truncated = size > max_response_bytes
        if truncated and not allow_truncated:
            raise OutboundError(f"The answer is larger than {max_response_bytes} bytes")
        return OutboundResponse(
            status_code=response.status,
            headers={name.lower(): value for name, value in response.getheaders()},
            body=data[:max_response_bytes],
            truncated=truncated,
            latency_ms=deadline.elapsed_ms(),
            connected_address=address,
        )
    except (OSError, http.client.HTTPException) as exc:
        if deadline.expired or isinstance(exc, TimeoutError):
            raise OutboundTimeout(f"No complete answer within {timeout:g} s") from exc
        raise OutboundError(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
    finally:
        deadline.cancel()
        connection.close()


def post(url: str, *, body: bytes, headers: dict[str, str] | None = None, **options):
    return request("POST", url, body=body, headers=headers, **options)


def get(url: str, *, headers: dict[str, str] | None = None, **options):
    return request("GET", url, headers=headers, **options)
