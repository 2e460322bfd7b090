# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The embedded mesh's layout: addresses and ports of echo servers and gateways."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def mesh_layout(clusters, instances=2, echo_port=18080, gateway_base_port=18100):
    """Per cluster i (in order): echo instance j on 127.0.(10+i).(j+1):echo_port;
    its gateway's client listener on 127.0.0.1:base+10i, east-west +1, admin +2;
    its peer is the next cluster (the last one's is the first)."""
    clusters = list(clusters or [])
    if len(clusters) < 2:
        raise AnsibleFilterError(f"the mesh needs at least two clusters, got {len(clusters)}")
    if not 1 <= int(instances) <= 250:
        raise AnsibleFilterError(f"echo instances per cluster must be from 1 to 250, got {instances}")
    if len(clusters) > 200:
        raise AnsibleFilterError("the mesh layout supports at most 200 clusters")
    out = []
    for i, c in enumerate(clusters):
        base = int(gateway_base_port) + 10 * i
        out.append({
            "cluster": c["name"],
            "index": i,
            "echo": [
                {"instance": f"{c['name']}-echo-{j}", "address": f"127.0.{10 + i}.{j + 1}", "port": int(echo_port)}
                for j in range(int(instances))
            ],
            "local_port": base,
            "eastwest_port": base + 1,
            "admin_port": base + 2,
            "peer": clusters[(i + 1) % len(clusters)]["name"],
            "peer_eastwest_port": int(gateway_base_port) + 10 * ((i + 1) % len(clusters)) + 1,
            "url": f"http://127.0.0.1:{base}/echo",
        })
    return out


def istio_gateway_addresses(clusters):
    """The address each cluster's east-west gateway is reached at by its peers,
    by cluster name: where the project owns the cluster and its nodes are real
    (kind), its control-plane node's address (capabilities.peer_server's host);
    elsewhere nothing (a load balancer gives the gateway its address)."""
    from urllib.parse import urlparse

    out = {}
    for c in clusters or []:
        caps = c.get("capabilities") or {}
        if caps.get("owned") and not caps.get("simulated_nodes") and caps.get("peer_server"):
            out[c["name"]] = urlparse(caps["peer_server"]).hostname
    return out


def istio_client_urls(layout, addresses):
    """The layout's gateways with the URL clients use on real nodes: the
    ingress gateway's address (port 80) where it is known, else the local
    port-forward's (the layout's own URL); ``path`` says which."""
    out = []
    for gw in layout or []:
        entry = dict(gw)
        address = (addresses or {}).get(gw["cluster"])
        if address:
            entry["url"], entry["path"] = f"http://{address}:80/echo", "node address"
        else:
            entry["path"] = "kubectl port-forward (through the API server)"
        out.append(entry)
    return out


class FilterModule:
    def filters(self):
        return {"mesh_layout": mesh_layout, "istio_gateway_addresses": istio_gateway_addresses,
                "istio_client_urls": istio_client_urls}
