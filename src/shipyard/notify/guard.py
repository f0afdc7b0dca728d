"""Which addresses a client-given webhook URL may reach: public ones only, unless the
operator allows more with ``SHIPYARD_WEBHOOK_ALLOW``.

A run's ``webhook`` comes from whoever may create runs; without this guard they could make
the server probe its own network (metadata services, databases on loopback). Refused:
loopback, private, link-local, shared, reserved, multicast and unspecified addresses — every
address that is not globally routable — and the names ``localhost`` / ``*.localhost``.
``SHIPYARD_WEBHOOK_ALLOW`` is a comma list of CIDRs (``10.0.0.0/8``), addresses
(``127.0.0.1``) and host names (``hooks.internal``) allowed anyway.

``check_url`` is the cheap check at run creation (scheme, literal addresses, names);
``resolve`` is the check at send time: it resolves the host and returns its addresses only
if every one is allowed, so the sender connects to an address that was checked (a name
re-resolving to another address between check and connect cannot slip through).
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from shipyard.errors import UserInputError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class WebhookRefusedError(UserInputError):
    """A webhook URL the server will not call; the message says why."""


@dataclass(frozen=True)
class AllowList:
    """Non-public destinations allowed anyway: networks and exact host names."""

    networks: tuple[Network, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str) -> AllowList:
        """Parse ``SHIPYARD_WEBHOOK_ALLOW`` (comma separated; blanks ignored)."""
        networks: list[Network] = []
        hosts: set[str] = set()
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                if "/" in item or not item.replace("-", "").replace(".", "").isalnum():
                    raise WebhookRefusedError(
                        f"SHIPYARD_WEBHOOK_ALLOW: {item!r} is neither a CIDR, an address nor "
                        "a host name"
                    ) from None
                hosts.add(item.lower().rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    def allows_host(self, host: str) -> bool:
        """``host`` (a name) is listed by name."""
        return host.lower().rstrip(".") in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        """``address`` is public, or inside a listed network."""
        return _public(address) or any(address in net for net in self.networks)


def allowed_here() -> AllowList:
    """This process's ``SHIPYARD_WEBHOOK_ALLOW``, parsed (once per value)."""
    return _parsed(os.environ.get("SHIPYARD_WEBHOOK_ALLOW", ""))


@functools.lru_cache(maxsize=4)
def _parsed(text: str) -> AllowList:
    return AllowList.parse(text)


def check_url(url: str, allow: AllowList) -> SplitResult:
    """The parsed URL, or ``WebhookRefusedError`` when it is not an absolute http(s) URL or
    names a host that is not allowed without resolving anything (a literal address,
    ``localhost``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise WebhookRefusedError(f"{url!r} is not an http:// or https:// URL")
    host = parts.hostname
    if not host:
        raise WebhookRefusedError(f"{url!r} has no host")
    try:
        _ = parts.port
    except ValueError:
        raise WebhookRefusedError(f"{url!r} has an invalid port") from None
    if allow.allows_host(host):
        return parts
    if host == "localhost" or host.endswith(".localhost"):
        raise WebhookRefusedError(_refusal(host, "loopback"))
    literal = _literal(host)
    if literal is not None and not allow.allows_address(literal):
        raise WebhookRefusedError(_refusal(host, _kind(literal)))
    return parts


def resolve(url: str, allow: AllowList) -> list[IPAddress]:
    """Every address ``url``'s host resolves to, if all are allowed; else
    ``WebhookRefusedError`` naming the first that is not (or saying it did not resolve)."""
    parts = check_url(url, allow)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as err:
        raise WebhookRefusedError(f"cannot resolve the webhook host {host!r}: {err}") from None
    addresses = list(dict.fromkeys(_plain(ipaddress.ip_address(info[4][0])) for info in infos))
    if allow.allows_host(host):
        return addresses
    for address in addresses:
        if not allow.allows_address(address):
            raise WebhookRefusedError(_refusal(f"{host} ({address})", _kind(address)))
    return addresses


def _refusal(host: str, kind: str) -> str:
    return (
        f"the webhook host {host} is a {kind} address, which the server does not call; "
        "an operator can allow it with SHIPYARD_WEBHOOK_ALLOW"
    )


def _literal(host: str) -> IPAddress | None:
    try:
        return _plain(ipaddress.ip_address(host))
    except ValueError:
        return None


def _plain(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address as the IPv4 address it carries."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _public(address: IPAddress) -> bool:
    return address.is_global and not address.is_multicast


def _kind(address: IPAddress) -> str:
    for kind in ("unspecified", "loopback", "link_local", "multicast", "reserved", "private"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return "non-public"


__all__ = [
    "AllowList",
    "IPAddress",
    "WebhookRefusedError",
    "allowed_here",
    "check_url",
    "resolve",
]
