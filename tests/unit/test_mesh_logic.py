"""Pure logic of the mesh: schedules, answer classes, slot summaries, gateway and layout."""
import re

import pytest

from ansible_collections.fedbench.testbed.plugins.filter.mesh import istio_client_urls, istio_gateway_addresses, mesh_layout
from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import burst
from ansible_collections.fedbench.testbed.plugins.module_utils.frameworks.mesh import gateway


def test_default_schedule_is_the_study_profile():
    s = burst.default_schedule(spike=9)
    assert len(s) == 20 and s[:2] == [1, 1] and s[2:5] == [3, 3, 3] and s[5:16] == [9] * 11 and s[16:] == [1] * 4


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"slot_seconds": 0, "requests": (1,)}, "slot_seconds must be positive"),
        ({"slot_seconds": 1, "requests": ()}, "the schedule has no slots"),
        ({"slot_seconds": 1, "requests": (1, -2)}, "requests per slot must be whole numbers >= 0, got -2"),
        ({"slot_seconds": 1, "requests": (1,), "timeout": 0}, "timeout must be positive"),
        ({"slot_seconds": 1, "requests": (1,), "max_inflight": 0}, "max_inflight must be a whole number >= 1, got 0"),
        ({"slot_seconds": 1, "requests": (1,), "lag_limit": 0}, "lag_limit must be positive"),
        ({"slot_seconds": 1, "requests": (1,), "processes": 0}, "processes must be a whole number from 1 to 64, got 0"),
    ],
)
def test_bad_schedules_are_named(kwargs, message):
    with pytest.raises(burst.BurstError, match=message):
        burst.Schedule(**kwargs)


def test_targets_must_be_urls():
    with pytest.raises(burst.BurstError, match=r"target 'gateway' is not an http\(s\) URL with a host"):
        burst.run(["gateway"], burst.Schedule(1, (1,)))
    with pytest.raises(burst.BurstError, match="targets is empty"):
        burst.run([], burst.Schedule(1, (1,)))


@pytest.mark.parametrize(
    "status, body, expected",
    [
        (200, b'{"cluster": "a", "instance": "a-0"}', "ok"),
        (503, b'{"cluster": "a", "error": "busy"}', "backend_busy"),
        (503, b"no healthy upstream", "no_healthy_upstream"),
        (503, b"upstream connect error or disconnect/reset before headers. reset reason: overflow", "overflow"),
        (502, b"<html>bad gateway</html>", "gateway_error"),
        (404, b"{}", "http_error"),
    ],
)
def test_answers_are_classified(status, body, expected):
    assert burst.classify(status, body)[0] == expected


def test_slot_summary_counts_shares_and_errors():
    reqs = [
        burst.Request(0, "t", 0.0, 0.010, 200, "a", "a-0", "ok"),
        burst.Request(0, "t", 0.0, 0.030, 200, "b", "b-0", "ok"),
        burst.Request(0, "t", 0.0, None, None, None, None, "connect_error"),
        burst.Request(1, "t", 1.0, 0.020, 200, "a", "a-1", "ok"),
    ]
    slots = burst.summarize_slots(reqs, 3, 1.0)
    assert slots[0]["requests"] == 3 and slots[0]["successes"] == 2
    assert slots[0]["served_by"] == {"a": 1, "b": 1} and slots[0]["share"] == {"a": 0.5, "b": 0.5}
    assert slots[0]["errors"] == {"connect_error": 1}
    assert slots[0]["latency"]["max"] == 0.03
    assert slots[2] == {"slot": 2, "start": 2.0, "requests": 0, "successes": 0, "latency": slots[2]["latency"], "lag": slots[2]["lag"],
                        "client_saturated": False, "served_by": {}, "share": {}, "errors": {}}


def _sent(slot, lag, error="ok"):
    due = slot * 1.0
    return burst.Request(slot, "t", due + lag, 0.01 if error == "ok" else None, 200, "a", "a-0", error, scheduled=due, lag=lag)


def test_a_slot_is_client_saturated_by_its_send_lag_or_a_request_not_sent():
    reqs = [_sent(0, 0.001) for _ in range(50)]  # on time
    reqs += [_sent(1, 0.001) for _ in range(50)] + [_sent(1, 0.030)]  # one late request in 51: p99 passes 10 ms
    reqs += [_sent(2, 0.001), burst.Request(2, "t", 2.0, None, None, None, None, "client_overload", scheduled=2.0)]
    reqs += [_sent(3, 0.001)]
    slots = burst.summarize_slots(reqs, 4, 1.0, lag_limit=0.010)
    assert [s["client_saturated"] for s in slots] == [False, True, True, False]
    assert slots[1]["lag"]["max"] == 0.03 and slots[1]["lag"]["count"] == 51
    assert slots[2]["errors"] == {"client_overload": 1} and slots[2]["lag"]["count"] == 1
    verdict = burst.client_verdict(slots, 0.010)
    assert verdict.startswith("the client could not keep its schedule in slot(s) 1-2: send lag p99 up to ")
    assert "1 request(s) not sent (client_overload)" in verdict and "measure the client, not the data plane" in verdict
    assert burst.client_verdict(slots[:1], 0.010) is None


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}extra", (200, b"{}", 40, True)),
        (b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 19\r\n\r\nno healthy upstream",
         (503, b"no healthy upstream", -1, False)),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{\"\r\n3\r\na\"}\r\n0\r\n\r\n", (200, b'{"a"}', -1, True)),
        (b"HTTP/1.1 204 No Content\r\n\r\n", (204, b"", -1, True)),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}", None),  # not whole yet
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n", None),
        (b"HTTP/1.1 200 OK\r\nContent-", None),
    ],
)
def test_http_answers_are_parsed_whole_or_not_at_all(data, expected):
    if expected and expected[2] == -1:  # the whole buffer is the answer
        expected = (expected[0], expected[1], len(data), expected[3])
    assert burst.parse_response(data) == expected


def test_a_close_delimited_answer_ends_at_eof_and_garbage_is_refused():
    assert burst.parse_response(b"HTTP/1.0 200 OK\r\n\r\nbody", eof=False) is None
    assert burst.parse_response(b"HTTP/1.0 200 OK\r\n\r\nbody", eof=True) == (200, b"body", 23, False)
    with pytest.raises(burst.HttpError, match="closed before a whole answer"):
        burst.parse_response(b"HTTP/1.1 200", eof=True)
    with pytest.raises(burst.HttpError, match="not an HTTP/1.x status line"):
        burst.parse_response(b"SSH-2.0-OpenSSH\r\n\r\n")


def _spec(**over):
    base = dict(cluster="a", admin_port=1, local_port=2, eastwest_port=3, echo=(gateway.Endpoint("127.0.10.1", 8080),),
                peer=gateway.Endpoint("127.0.0.1", 13), cert_chain="/c", private_key="/k", root_cert="/r")
    base.update(over)
    return gateway.GatewaySpec(**base)


def test_gateway_fails_over_to_the_peer_over_mtls_and_keeps_the_study_policy():
    cfg = gateway.envoy_config(_spec(consecutive_errors=1, base_ejection_seconds=60))
    clusters = {c["name"]: c for c in cfg["static_resources"]["clusters"]}
    assert clusters["echo"]["cluster_type"]["typed_config"]["clusters"] == ["echo_local", "peer"]
    local = clusters["echo_local"]
    assert local["outlier_detection"]["consecutive_5xx"] == 1 and local["outlier_detection"]["base_ejection_time"] == "60.000s"
    assert local["common_lb_config"]["healthy_panic_threshold"]["value"] == 0.0
    assert "outlier_detection" not in clusters["echo_eastwest"]
    peer_tls = clusters["peer"]["transport_socket"]["typed_config"]
    assert peer_tls["common_tls_context"]["validation_context"]["trusted_ca"]["filename"] == "/r"
    listeners = {l["name"]: l for l in cfg["static_resources"]["listeners"]}
    ew_tls = listeners["eastwest"]["filter_chains"][0]["transport_socket"]["typed_config"]
    assert ew_tls["require_client_certificate"] is True
    route = listeners["local"]["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"][0]["routes"][0]["route"]
    assert route["cluster"] == "echo" and route["retry_policy"]["retry_priority"]["name"] == "envoy.retry_priorities.previous_priorities"
    for l in listeners.values():
        assert l["address"]["socket_address"]["address"] == "127.0.0.1"


def test_gateway_refuses_addresses_off_loopback():
    with pytest.raises(ValueError, match="127.0.0.0/8"):
        gateway.envoy_config(_spec(echo=(gateway.Endpoint("10.0.0.1", 80),)))


def test_mesh_layout_assigns_addresses_ports_and_peers():
    layout = mesh_layout([{"name": "a"}, {"name": "b"}], 2, 18080, 18100)
    assert [e["address"] for e in layout[0]["echo"]] == ["127.0.10.1", "127.0.10.2"]
    assert layout[1]["echo"][1]["address"] == "127.0.11.2"
    assert (layout[0]["local_port"], layout[0]["eastwest_port"], layout[0]["admin_port"]) == (18100, 18101, 18102)
    assert layout[0]["peer"] == "b" and layout[0]["peer_eastwest_port"] == 18111
    assert layout[1]["peer"] == "a" and layout[1]["peer_eastwest_port"] == 18101
    with pytest.raises(Exception, match="at least two clusters"):
        mesh_layout([{"name": "a"}])


def test_east_west_gateways_get_the_node_address_only_on_owned_real_nodes():
    kind = {"owned": True, "simulated_nodes": False, "peer_server": "https://172.18.0.2:6443"}
    clusters = [
        {"name": "k", "capabilities": kind},
        {"name": "e", "capabilities": {"owned": True, "simulated_nodes": True, "peer_server": "https://127.0.0.1:1"}},
        {"name": "x", "capabilities": {"owned": False, "simulated_nodes": False, "peer_server": "https://10.0.0.1"}},
        {"name": "n"},
    ]
    assert istio_gateway_addresses(clusters) == {"k": "172.18.0.2"}
    assert istio_gateway_addresses(None) == {}


@pytest.mark.parametrize(
    "target, message",
    [
        ("http://", "is not an http(s) URL with a host"),
        ("ftp://127.0.0.1/x", "is not an http(s) URL with a host"),
        ("http://127.0.0.1:abc/", "has a port that is not a number"),
        ("http://192.0.2.10:8080/echo", "is not an address of this testbed"),
    ],
    ids=["no-host", "not-http", "bad-port", "foreign-address"],
)
def test_targets_are_checked_before_anything_is_sent(target, message):
    with pytest.raises(burst.BurstError, match=re.escape(message)):
        burst.check_targets([target])


def test_loopback_and_the_testbeds_own_addresses_pass():
    assert burst.check_targets(["http://127.0.0.1:18100/echo", "https://127.0.5.1/x", "http://localhost:1/"])
    assert burst.check_targets(["https://10.1.2.3:443/echo"], allowed=["10.1.2.3"])


def test_real_gateways_are_reached_at_their_node_else_through_a_port_forward():
    layout = mesh_layout([{"name": "a"}, {"name": "b"}], 2, 18080, 18100)
    out = istio_client_urls(layout, {"a": "172.28.0.2"})
    assert (out[0]["url"], out[0]["path"]) == ("http://172.28.0.2:80/echo", "node address")
    assert out[1]["url"] == "http://127.0.0.1:18110/echo" and "port-forward" in out[1]["path"]
    assert "path" not in layout[0], "the layout itself is left as it was"


def test_endpoint_health_reads_the_ejected_endpoints_of_one_cluster_from_envoys_clusters_dump():
    from ansible_collections.fedbench.testbed.plugins.module_utils.frameworks import istio

    echo = "outbound|80||echo.fedbench-echo.svc.cluster.local"
    dump = "\n".join([
        f"{echo}::outlier::success_rate_average::-1",
        f"{echo}::10.244.0.7:8080::cx_active::0",
        f"{echo}::10.244.0.7:8080::health_flags::/failed_outlier_check",
        f"{echo}::10.244.0.8:8080::health_flags::healthy",
        f"{echo}::172.18.0.3:15443::health_flags::/failed_outlier_check/failed_eds_health",
        "outbound|15010||istiod.istio-system.svc.cluster.local::10.244.0.5:15010::health_flags::healthy",
    ])
    assert istio.endpoint_health(dump, echo) == {
        "10.244.0.7:8080": ["failed_outlier_check"], "10.244.0.8:8080": ["healthy"],
        "172.18.0.3:15443": ["failed_outlier_check", "failed_eds_health"]}
