"""Which webhook URLs the server calls (``shipyard.notify.guard``): public addresses only,
unless ``SHIPYARD_WEBHOOK_ALLOW`` lists the network or the host."""

from __future__ import annotations

import ipaddress
import re

import pytest

from shipyard.notify.guard import AllowList, WebhookRefusedError, check_url, resolve

NONE = AllowList()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/h", "127.0.0.1 is a loopback address"),
        ("http://127.9.9.9:8080/h", "loopback"),
        ("http://localhost/h", "localhost is a loopback address"),
        ("http://api.localhost/h", "loopback"),
        ("http://[::1]/h", "loopback"),
        ("http://[::ffff:10.0.0.1]/h", "10.0.0.1 is a private address"),
        ("http://10.0.0.1/h", "private"),
        ("http://172.16.5.4/h", "private"),
        ("http://192.168.1.1/h", "private"),
        ("http://169.254.169.254/latest", "link-local"),
        ("http://[fe80::1]/h", "link-local"),
        ("http://[fd00::1]/h", "private"),
        ("http://0.0.0.0/h", "unspecified"),
        ("http://224.0.0.1/h", "multicast"),
        ("http://100.64.0.1/h", "non-public"),
        ("http://240.0.0.1/h", "reserved"),
        ("ftp://hooks.example.com/h", "is not an http:// or https:// URL"),
        ("/threads/1/runs", "is not an http:// or https:// URL"),
        ("http:///nohost", "has no host"),
        ("http://hooks.example.com:99999/h", "invalid port"),
    ],
)
def test_refused_without_resolving(url: str, reason: str) -> None:
    with pytest.raises(WebhookRefusedError, match=re.escape(reason)):
        check_url(url, NONE)


def test_public_literals_and_names_pass_the_static_check() -> None:
    for url in ("https://8.8.8.8/h", "http://[2001:4860:4860::8888]/h", "https://hooks.example/h"):
        assert check_url(url, NONE).hostname


def test_the_allow_list_admits_networks_addresses_and_names() -> None:
    allow = AllowList.parse(" 10.0.0.0/8, 127.0.0.1 ,, ::1, Hooks.Internal. ")
    assert allow.networks == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )
    assert allow.hosts == frozenset({"hooks.internal"})
    for url in ("http://10.2.3.4/h", "http://127.0.0.1:9/h", "http://[::1]/h"):
        check_url(url, allow)
    check_url("http://hooks.internal/h", allow)
    with pytest.raises(WebhookRefusedError, match=re.escape("127.0.0.2")):
        check_url("http://127.0.0.2/h", allow)
    with pytest.raises(WebhookRefusedError, match="localhost"):
        check_url("http://localhost/h", allow)  # a name is allowed by name only


def test_a_bad_allow_entry_names_the_variable() -> None:
    with pytest.raises(
        WebhookRefusedError, match=re.escape("SHIPYARD_WEBHOOK_ALLOW: '10.0.0.0/99'")
    ):
        AllowList.parse("10.0.0.0/99")
    with pytest.raises(WebhookRefusedError, match="SHIPYARD_WEBHOOK_ALLOW: 'a b'"):
        AllowList.parse("a b")


def test_resolve_checks_every_address_a_name_has() -> None:
    assert resolve("http://127.0.0.1:9/h", AllowList.parse("127.0.0.0/8")) == [
        ipaddress.ip_address("127.0.0.1")
    ]
    with pytest.raises(WebhookRefusedError, match=re.escape("127.0.0.1")):
        resolve("http://127.0.0.1:9/h", NONE)
    with pytest.raises(WebhookRefusedError, match="cannot resolve the webhook host"):
        resolve("http://no-such-host.invalid/h", NONE)
