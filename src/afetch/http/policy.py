"""Which addresses may be dialled: ``--deny-private``, ``--allow``, ``--deny``.

Checked on the address actually dialled, not on the name: the resolver
filters every answer (DNS, hosts file, ``--resolve``, an IP literal) before
Happy Eyeballs sees it, so each candidate, each redirect hop and each retry
is checked, and a DNS answer cannot change between the check and the
connect (rebinding). A proxied request is checked on the proxy's address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from afetch.http.request import host_key

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Beyond what ``ipaddress`` calls private, loopback, link-local, multicast,
#: reserved or unspecified: carrier-grade NAT and the cloud metadata addresses.
_EXTRA_PRIVATE = (
    ipaddress.ip_network("100.64.0.0/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """``--deny-private`` with ``--allow`` / ``--deny`` refinements (networks or hosts)."""

    deny_private: bool = False
    allow: tuple[Network, ...] = ()
    deny: tuple[Network, ...] = ()
    allow_hosts: frozenset[str] = frozenset()
    deny_hosts: frozenset[str] = frozenset()

    @classmethod
    def build(
        cls, *, deny_private: bool, allow: Iterable[str] = (), deny: Iterable[str] = ()
    ) -> AddressPolicy | None:
        """The policy the options ask for (None: every address may be dialled)."""
        allow_nets, allow_hosts = _split(allow, "--allow")
        deny_nets, deny_hosts = _split(deny, "--deny")
        if not (deny_private or allow_nets or allow_hosts or deny_nets or deny_hosts):
            return None
        return cls(deny_private, allow_nets, deny_nets, allow_hosts, deny_hosts)

    def refusal(self, host: str, ip: str) -> str | None:
        """Why ``ip`` (an answer for ``host``) may not be dialled; None: it may."""
        name = host.lower().rstrip(".")
        if name in self.deny_hosts:
            return f"{host} is denied (--deny)"
        address = _unwrapped(ipaddress.ip_address(ip.split("%")[0]))
        if any(address in network for network in self.deny if network.version == address.version):
            return f"{ip} is denied (--deny)"
        if name in self.allow_hosts:
            return None
        if any(address in net for net in self.allow if net.version == address.version):
            return None
        if self.deny_private and _is_private(address):
            return f"{ip} is a private address (--deny-private)"
        return None


def _split(items: Iterable[str], option: str) -> tuple[tuple[Network, ...], frozenset[str]]:
    networks: list[Network] = []
    hosts: set[str] = set()
    for item in items:
        text = item.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
        except ValueError:
            if "/" in text or " " in text:
                raise ValueError(f"{option} {text!r} is neither a network nor a host") from None
            try:
                hosts.add(host_key(text))
            except ValueError:
                raise ValueError(f"{option} {text!r} is neither a network nor a host") from None
    return tuple(networks), frozenset(hosts)


def _unwrapped(address: Address) -> Address:
    """An IPv4 address dressed as IPv6 (mapped ``::ffff:a.b.c.d``, NAT64) as itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _is_private(address: Address) -> bool:
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
        or any(address in net for net in _EXTRA_PRIVATE if net.version == address.version)
    )
