"""The service network: where services' own addresses come from, and which of its addresses a service may hold.

One range per fleet (the inventory's ``cp_service_network``, 2014's default ``10.254.0.0/16``). Its 10th address
is the minions' DNS server (as kube-dns used 10.0.0.10), so no service holds it; nor do the network's first
and last addresses. Pure: validation, allocation and rendering all ask the same questions here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import cached_property

NETWORK_VAR = "cp_service_network"
DEFAULT_NETWORK = "10.254.0.0/16"
DNS_INDEX = 10
NODE_PORTS = range(30000, 32768)
CLUSTER_DOMAIN = "cluster.local"


@dataclass(frozen=True)
class ServiceNetwork:
    cidr: str = DEFAULT_NETWORK

    @cached_property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.cidr, strict=False)

    @property
    def dns(self) -> str:
        """The DNS server every minion runs and every pod is given."""
        return str(self.network[DNS_INDEX])

    @property
    def size(self) -> int:
        return self.network.num_addresses

    def address(self, index: int) -> str:
        return str(self.network[index])

    def refusal(self, address: str) -> str | None:
        """Why a service may not hold ``address`` on this fleet, or None."""
        try:
            ip = ipaddress.IPv4Address(address)
        except ValueError:
            return f"{address!r} is not an IPv4 address"
        if ip not in self.network:
            return f"{address} is outside the service network {self.network} ({NETWORK_VAR})"
        if ip in (self.network.network_address, self.network.broadcast_address):
            return f"{address} is the service network's own {'network' if ip == self.network[0] else 'broadcast'} address"
        if str(ip) == self.dns:
            return f"{address} is the minions' DNS server: choose another address of {self.network}"
        return None


def parse(cidr: object, where: str) -> ServiceNetwork:
    """An inventory's value, or ``ValueError`` saying what is wrong with it (at ``where``)."""
    try:
        network = ipaddress.IPv4Network(str(cidr), strict=False)
    except ValueError as exc:
        raise ValueError(f"{where}: {NETWORK_VAR}: {cidr!r} is not an IPv4 network ({exc})") from None
    if network.num_addresses < 2 * DNS_INDEX:
        raise ValueError(f"{where}: {NETWORK_VAR}: {network} is too small (at least /27)")
    return ServiceNetwork(str(network))


def dns_names(name: str, namespace: str) -> tuple[str, ...]:
    """What the minions' DNS server answers with a service's address."""
    return name, f"{name}.{namespace}", f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}"


def search_path(namespace: str = "default") -> tuple[str, ...]:
    """The search path pods get, so ``redis-master`` finds the service of their namespace."""
    return f"{namespace}.svc.{CLUSTER_DOMAIN}", f"svc.{CLUSTER_DOMAIN}", CLUSTER_DOMAIN
