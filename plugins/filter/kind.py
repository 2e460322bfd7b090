# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``[cluster, inspect] | fedbench.testbed.with_peer_server(port)``: a kind
cluster with ``capabilities.peer_server`` from its control plane's address."""

from __future__ import annotations


def with_peer_server(pair, port=6443):
    cluster, inspect = pair
    address = (inspect.get("stdout") or "").strip()
    caps = dict(cluster.get("capabilities") or {})
    if address:
        caps.setdefault("peer_server", f"https://{address}:{port}")
    return dict(cluster, capabilities=caps)


class FilterModule:
    def filters(self):
        return {"with_peer_server": with_peer_server}
