# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Envoy configuration for one cluster's gateway on the embedded testbed.

This *emulates* Istio's data path with stock Envoy: the embedded testbed has
no Istio sidecars or gateways (they need Istio's own Envoy build and a real
data plane). It is configured the way the study configured its gateway:

- a plain-HTTP listener on 127.0.0.1 for this cluster's clients;
- an aggregate upstream: first this cluster's echo servers, then the peer
  cluster's gateway; the peer gets traffic only while local endpoints are
  ejected, which is what Istio's locality failover does;
- connection limits (circuit breakers) and outlier detection on it (the
  study: max connections 1, consecutive errors 1, base ejection 1 minute);
- a retry on 5xx or a reset that goes to the other priority
  (``previous_priorities``), so a request a busy local instance refuses is
  served by the peer;
- an east-west listener, mutual TLS, for the peer's overflow, that serves
  from the local endpoints only (no ping-pong) and, like Istio's
  pass-through east-west gateway, applies no traffic policy of its own. Each side presents its
  cluster's gateway certificate (issued by that cluster's intermediate CA)
  and accepts only certificates that chain to the shared root.

Pure: returns a dict (JSON is valid Envoy YAML); the role writes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Endpoint:
    address: str
    port: int


@dataclass(frozen=True)
class GatewaySpec:
    cluster: str
    admin_port: int
    local_port: int
    eastwest_port: int
    echo: tuple[Endpoint, ...]
    peer: Endpoint | None
    cert_chain: str  # gateway cert + intermediate
    private_key: str
    root_cert: str
    peer_san: str = "spiffe://cluster.local/ns/istio-system/sa/istio-eastwestgateway"
    max_connections: int = 1
    max_pending_requests: int = 1
    max_requests: int = 1024
    consecutive_errors: int = 1
    base_ejection_seconds: float = 60.0
    max_ejection_percent: int = 100
    outlier_interval_seconds: float = 0.1
    retries: int = 1
    request_timeout_seconds: float = 5.0
    access_log: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _addr(address: str, port: int) -> dict[str, Any]:
    if not address.startswith("127."):
        raise ValueError(f"gateway addresses must be on 127.0.0.0/8, got {address}")
    return {"socket_address": {"address": address, "port_value": port}}


def _duration(seconds: float) -> str:
    return f"{seconds:.3f}s"


def _tls_context(spec: GatewaySpec, *, server: bool) -> dict[str, Any]:
    common = {
        "tls_certificates": [
            {"certificate_chain": {"filename": spec.cert_chain}, "private_key": {"filename": spec.private_key}}
        ],
        "validation_context": {
            "trusted_ca": {"filename": spec.root_cert},
            "match_typed_subject_alt_names": [{"san_type": "URI", "matcher": {"exact": spec.peer_san}}],
        },
        "tls_params": {"tls_minimum_protocol_version": "TLSv1_2"},
    }
    if server:
        return {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "common_tls_context": common,
            "require_client_certificate": True,
        }
    return {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "common_tls_context": common,
        "sni": f"eastwestgateway.{spec.cluster}.fedbench.local",
    }


def _hcm(name: str, cluster: str, spec: GatewaySpec, *, retries: bool) -> dict[str, Any]:
    route: dict[str, Any] = {"cluster": cluster, "timeout": _duration(spec.request_timeout_seconds)}
    if retries and spec.retries:
        route["retry_policy"] = {
            "retry_on": "5xx,reset,connect-failure,refused-stream",
            "num_retries": spec.retries,
            "retry_priority": {
                "name": "envoy.retry_priorities.previous_priorities",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig",
                    "update_frequency": 1,
                },
            },
            "retry_host_predicate": [
                {
                    "name": "envoy.retry_host_predicates.previous_hosts",
                    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"},
                }
            ],
            "host_selection_retry_max_attempts": 3,
        }
    hcm: dict[str, Any] = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": name,
        "route_config": {
            "name": name,
            "virtual_hosts": [{"name": name, "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": route}]}],
        },
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
    }
    if spec.access_log:
        hcm["access_log"] = [{
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": spec.access_log,
                "log_format": {"text_format_source": {"inline_string": f"[{name}] %START_TIME% %RESPONSE_CODE% %RESPONSE_FLAGS% %UPSTREAM_HOST% %DURATION%ms\n"}},
            },
        }]
    return hcm


def _eastwest_local(spec: GatewaySpec) -> dict[str, Any]:
    """This cluster's echo servers as the peer reaches them: Istio's east-west
    gateway passes traffic through (AUTO_PASSTHROUGH), and the traffic policy
    (limits, outlier detection) is the *client* side's, so none here."""
    return {
        "name": "echo_eastwest",
        "type": "STATIC",
        "connect_timeout": "1s",
        "lb_policy": "ROUND_ROBIN",
        "load_assignment": {
            "cluster_name": "echo_eastwest",
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _addr(e.address, e.port)}} for e in spec.echo]}],
        },
    }


def _local(spec: GatewaySpec) -> dict[str, Any]:
    """This cluster's echo servers, with the study's limits and outlier detection."""
    return {
        "name": "echo_local",
        "type": "STATIC",
        "connect_timeout": "1s",
        "lb_policy": "ROUND_ROBIN",
        "circuit_breakers": {"thresholds": [{
            "priority": "DEFAULT",
            "max_connections": spec.max_connections,
            "max_pending_requests": spec.max_pending_requests,
            "max_requests": spec.max_requests,
            "max_retries": 1024,
        }]},
        "outlier_detection": {
            "consecutive_5xx": spec.consecutive_errors,
            "consecutive_gateway_failure": spec.consecutive_errors,
            "interval": _duration(spec.outlier_interval_seconds),
            "base_ejection_time": _duration(spec.base_ejection_seconds),
            "max_ejection_time": _duration(max(spec.base_ejection_seconds, 1.0) * 10),
            "max_ejection_percent": spec.max_ejection_percent,
            "enforcing_consecutive_5xx": 100,
            "enforcing_consecutive_gateway_failure": 100,
        },
        # Never "panic route" to ejected hosts: fail over to the peer instead.
        "common_lb_config": {"healthy_panic_threshold": {"value": 0.0}},
        "load_assignment": {
            "cluster_name": "echo_local",
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _addr(e.address, e.port)}} for e in spec.echo]}],
        },
    }


def _peer(spec: GatewaySpec) -> dict[str, Any]:
    """The peer cluster's east-west gateway, over mutual TLS."""
    assert spec.peer is not None
    return {
        "name": "peer",
        "type": "STATIC",
        "connect_timeout": "1s",
        "lb_policy": "ROUND_ROBIN",
        "load_assignment": {"cluster_name": "peer", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _addr(spec.peer.address, spec.peer.port)}}]}]},
        "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": _tls_context(spec, server=False)},
    }


def _failover() -> dict[str, Any]:
    """Local first; the peer only for what the local endpoints cannot take."""
    return {
        "name": "echo",
        "connect_timeout": "1s",
        "lb_policy": "CLUSTER_PROVIDED",
        "cluster_type": {
            "name": "envoy.clusters.aggregate",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig", "clusters": ["echo_local", "peer"]},
        },
    }


def envoy_config(spec: GatewaySpec) -> dict[str, Any]:
    listeners = [
        {
            "name": "local",
            "address": _addr("127.0.0.1", spec.local_port),
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                            "typed_config": _hcm("local", "echo" if spec.peer else "echo_local", spec, retries=True)}]}],
        },
        {
            "name": "eastwest",
            "address": _addr("127.0.0.1", spec.eastwest_port),
            "filter_chains": [{
                "filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": _hcm("eastwest", "echo_eastwest", spec, retries=False)}],
                "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": _tls_context(spec, server=True)},
            }],
        },
    ]
    return {
        "node": {"id": f"gateway-{spec.cluster}", "cluster": spec.cluster},
        "admin": {"address": _addr("127.0.0.1", spec.admin_port)},
        "static_resources": {
            "listeners": listeners,
            "clusters": [_local(spec), _eastwest_local(spec)] + ([_peer(spec), _failover()] if spec.peer else []),
        },
        **spec.extra,
    }
