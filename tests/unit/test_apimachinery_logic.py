"""Pure logic of the API-machinery experiments: histograms, SLOs, churn and density parameters."""
import asyncio
import math

import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import apimachinery, churn, density, informer
from ansible_collections.fedbench.testbed.plugins.module_utils.measure import apimetrics
from ansible_collections.fedbench.testbed.plugins.module_utils import results
from ansible_collections.fedbench.testbed.plugins.module_utils.report import merge

BUCKETS = (0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0)


def histogram_text(metric: str, labels: str, observations: list[float]) -> str:
    lines = [f"# HELP {metric} Response latency.", f"# TYPE {metric} histogram"]
    for le in BUCKETS:
        lines.append(f'{metric}_bucket{{{labels},le="{le:g}"}} {sum(1 for o in observations if o <= le)}')
    lines.append(f'{metric}_bucket{{{labels},le="+Inf"}} {len(observations)}')
    lines.append(f"{metric}_sum{{{labels}}} {sum(observations)}")
    lines.append(f"{metric}_count{{{labels}}} {len(observations)}")
    return "\n".join(lines) + "\n"


POST = 'component="apiserver",group="",resource="configmaps",scope="resource",subresource="",verb="POST",version="v1"'
LIST_NS = 'component="apiserver",group="",resource="pods",scope="namespace",subresource="",verb="LIST",version="v1"'
WATCH = 'component="apiserver",group="",resource="pods",scope="namespace",subresource="",verb="WATCH",version="v1"'


def scrape(post: list[float], list_ns: list[float], watch: list[float] = ()) -> str:
    text = ""
    for metric in (apimetrics.SLI_METRIC, apimetrics.DURATION_METRIC):
        text += histogram_text(metric, POST, post) + histogram_text(metric, LIST_NS, list_ns) + histogram_text(metric, WATCH, list(watch))
    return text + 'apiserver_request_total{code="200",verb="POST"} 3\n'


def test_parser_reads_buckets_sum_count_and_escaped_labels():
    text = histogram_text("m", 'a="x\\"y",b="2"', [0.07, 0.3, 9.0])
    hist = apimetrics.parse_histograms(text, ["m"])["m"]
    (key, series), = hist.items()
    assert dict(key) == {"a": 'x\\"y', "b": "2"}
    assert series["count"] == 3 and math.isclose(series["sum"], 9.37)
    assert series["buckets"][0.1] == 1 and series["buckets"][0.4] == 2 and series["buckets"][math.inf] == 3


def test_quantile_interpolates_like_prometheus():
    # 100 observations: 50 in (0, 0.05], 50 in (0.05, 0.1]
    hist = {"buckets": {0.05: 50.0, 0.1: 100.0, math.inf: 100.0}, "sum": 7.5, "count": 100.0}
    assert apimetrics.quantile(0.5, hist) == pytest.approx(0.05)
    assert apimetrics.quantile(0.75, hist) == pytest.approx(0.075)
    assert apimetrics.quantile(0.25, hist) == pytest.approx(0.025)
    over = {"buckets": {0.05: 0.0, 60.0: 0.0, math.inf: 10.0}, "sum": 1000.0, "count": 10.0}
    assert apimetrics.quantile(0.99, over) == 60.0
    assert apimetrics.summarize(over)["above_last_bucket"] is True


def test_report_takes_the_difference_of_two_scrapes_and_judges_slos():
    before = scrape(post=[0.01] * 10, list_ns=[0.2] * 5, watch=[30.0])
    after = scrape(post=[0.01] * 10 + [0.03] * 98 + [1.1, 1.2], list_ns=[0.2] * 5 + [0.3] * 20, watch=[30.0, 59.0])
    rep = apimetrics.report(before, after)
    rows = {(r["verb"], r["resource"]): r for r in rep["latency"]}
    assert rows[("POST", "configmaps")]["count"] == 100
    assert rows[("LIST", "pods")]["count"] == 20
    slo = {(r["verb"], r["resource"], r["scope"]): r for r in rep["slo"]}
    # 2 of 100 POSTs took > 1 s: p99 lies in (1, 1.25]: the mutating SLO fails.
    assert slo[("POST", "configmaps", "")]["pass"] is False and 1.0 < slo[("POST", "configmaps", "")]["p99"] <= 1.25
    assert slo[("POST", "configmaps", "")]["p99_at_most"] == 1.25
    assert slo[("GET/LIST", "pods", "namespace")]["pass"] is True and slo[("GET/LIST", "pods", "namespace")]["threshold"] == 5.0
    assert not any(r["verb"] == "WATCH" for r in rep["slo"]), "streaming calls are outside the SLO"
    assert rep["slo_pass"] is False and rep["slo_metric"] == apimetrics.SLI_METRIC


def test_report_passes_when_p99_is_at_most_one_second():
    rep = apimetrics.report(scrape([], []), scrape([0.01] * 99 + [2.0], [0.1]))
    assert rep["slo_pass"] is True


def test_a_restarted_server_is_an_error_not_a_negative_histogram():
    with pytest.raises(apimetrics.MetricsError, match="count went down"):
        apimetrics.report(scrape([0.01] * 10, []), scrape([0.01] * 3, []))


def test_falls_back_to_the_duration_metric_without_the_sli_one():
    text = lambda obs: histogram_text(apimetrics.DURATION_METRIC, POST, obs)  # noqa: E731
    rep = apimetrics.report(text([]), text([0.01, 0.02]))
    assert rep["slo_metric"] == apimetrics.DURATION_METRIC and rep["slo"][0]["count"] == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mode": "open", "rate": 0, "lifetime": 1, "duration": 5}, r"rate must be > 0 objects per second for the open loop \(got 0\)"),
        ({"mode": "open", "rate": -3, "lifetime": 1, "duration": 5}, r"rate must be > 0 .*got -3"),
        ({"mode": "open", "rate": 5, "lifetime": -1, "duration": 5}, r"lifetime must be >= 0 seconds \(got -1\)"),
        ({"mode": "closed", "workers": 0, "duration": 5}, r"workers must be >= 1 for the closed loop \(got 0\)"),
        ({"mode": "closed", "workers": 2, "rate": -1, "duration": 5}, r"rate must be >= 0 cycles per second"),
        ({"mode": "open", "rate": 5, "duration": 0}, r"duration must be > 0 seconds \(got 0\)"),
        ({"mode": "sideways", "duration": 5}, r"mode must be open or closed, not 'sideways'"),
        ({"mode": "open", "rate": 5, "duration": 5, "payload_bytes": -1}, r"payload_bytes must be between 0 and 900000"),
        ({"mode": "open", "rate": 5, "duration": 5, "connections": 0}, r"connections must be >= 1"),
    ],
)
def test_bad_churn_parameters_are_named(kwargs, message):
    with pytest.raises(churn.ChurnError, match=message):
        churn.ChurnSpec(**kwargs)


def test_bad_parameters_fail_the_module_with_the_message_and_no_traceback():
    params = {"mode": "open", "rate": 0, "lifetime": 1, "duration": 5, "kubeconfig": "/nonexistent", "context": "x",
              "run_id": "r", "results_dir": "/tmp/none"}
    outcome = apimachinery.churn_from_params(params)
    assert outcome.failed and outcome.message.startswith("rate must be > 0")


def test_an_unreachable_cluster_is_named(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\n"
        "clusters: [{name: gone, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: gone, user: {}}]\ncontexts: [{name: gone, context: {cluster: gone, user: gone}}]\n"
    )
    params = {"mode": "open", "rate": 5, "lifetime": 0, "duration": 1, "kubeconfig": str(kubeconfig), "context": "gone",
              "run_id": "r", "results_dir": str(tmp_path / "results")}
    outcome = apimachinery.churn_from_params(params)
    assert outcome.failed and "cluster 'gone'" in outcome.message and "cannot reach its API server" in outcome.message
    missing = apimachinery.churn_from_params(dict(params, context="nope"))
    assert missing.failed and "no context 'nope'" in missing.message


def test_poisson_arrivals_are_reproducible_and_have_the_rate():
    a = churn.arrivals(50, 200, seed=1)
    assert a == churn.arrivals(50, 200, seed=1) and a != churn.arrivals(50, 200, seed=2)
    assert all(0 <= t < 200 for t in a) and a == sorted(a)
    # 10000 expected, standard deviation 100: 5 sigma either side.
    assert 9500 <= len(a) <= 10500
    gaps = [b - x for x, b in zip(a, a[1:])]
    assert sum(gaps) / len(gaps) == pytest.approx(1 / 50, rel=0.05)


def test_classes_of_answers():
    assert churn.classify(201) == "ok" and churn.classify(429) == "throttled" and churn.classify(409) == "conflict"
    assert churn.classify(404) == "not_found" and churn.classify(503) == "server_error" and churn.classify(422) == "client_error"
    assert churn.classify(None, asyncio.TimeoutError()) == "timeout" and churn.classify(None, ConnectionRefusedError()) == "connect_error"


def test_churn_summary_counts_throttling_apart_and_rates():
    spec = churn.ChurnSpec(mode="open", rate=10, lifetime=1, duration=2, seed=3)
    ops = [("create", 0.1 * i, 0.1 * i + 0.001, 0.01, 201, "ok") for i in range(18)]
    ops += [("create", 1.9, 1.9, 0.01, 429, "throttled"), ("delete", 2.0, 2.0, 0.02, 200, "ok")]
    s = churn.summarize(spec, ops, {"scheduled": 19})
    assert s["created"] == 18 and s["deleted"] == 1 and s["throttled"] == 1 and s["errors"] == {"throttled": 1}
    assert s["achieved_rate"] == 9.0 and s["rate_accuracy"] == 0.9 and s["delivery"] == round(18 / 19, 4)
    assert s["error_ratio"] == round(1 / 20, 6)


def test_informer_queue_holds_a_waiting_key_once():
    async def go():
        inf = informer.Informer(kube=None, token="t")
        obj = {"metadata": {"namespace": "a", "name": "x", "annotations": {churn.SENT_AT: "0"}}}
        inf._observe("ADDED", obj)
        inf._observe("MODIFIED", obj)
        inf._observe("ADDED", {"metadata": {"namespace": "a", "name": churn.SENTINEL_PREFIX + "t"}})
        return inf

    inf = asyncio.run(go())
    assert inf.queue.qsize() == 1 and inf.coalesced == 1 and inf.done.is_set()
    assert inf.events == {"ADDED": 1, "MODIFIED": 1, "DELETED": 0} and len(inf.notify["ADDED"]) == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"nodes": 0, "pods_per_node": 1, "rate": 1}, r"nodes must be >= 1 \(got 0\)"),
        ({"nodes": 1, "pods_per_node": 111, "rate": 1}, r"pods_per_node must be between 1 and 110"),
        ({"nodes": 1, "pods_per_node": 1, "rate": 0}, r"rate must be > 0 pods per second \(got 0\)"),
    ],
)
def test_bad_density_parameters_are_named(kwargs, message):
    with pytest.raises(density.DensityError, match=message):
        density.DensitySpec(**kwargs)


def test_density_summary():
    pods = {f"p{i}": {"sent": i * 0.1, "created": i * 0.1 + 0.01, "scheduled": i * 0.1 + 0.02, "running": i * 0.1 + 0.05} for i in range(30)}
    s = density.summarize(pods, density.DensitySpec(nodes=3, pods_per_node=10, rate=10), elapsed_sends=3.0)
    assert s["running"] == 30 and s["pod_startup"]["p50"] == pytest.approx(0.04) and s["pod_startup_pass"] is True
    assert s["scheduling_throughput"]["mean"] == pytest.approx(10.0, rel=0.01)
    assert density.per_second([0.0, 0.5, 1.2, 2.9]) == [2, 1, 1]


def test_markdown_has_the_apimachinery_tables():
    env = lambda exp, params, sample: results.envelope(  # noqa: E731
        run_id="r", experiment=exp, framework="native", testbed=[], point=params["point"], parameters=params,
        sample={"repetition": 1, "status": "ok", "started_at": "2026-01-01T00:00:00Z", **sample},
    )
    summary = {"requested_rate": 10, "scheduled_rate": 9.5, "achieved_rate": 9.5, "rate_accuracy": 0.95, "errors": {"throttled": 2},
               "verbs": {"create": {"latency": {"p50": 0.004, "p99": 0.01}}}}
    doc = {"run_id": "r", "results": merge.merge([
        env("churn", {"point": "open-rate10-life1"}, {"summary": summary, "apiserver": {"slo_pass": False}}),
        env("density", {"point": "n", "nodes": 3, "pods_per_node": 2},
            {"summary": {"running": 6, "pods": 6, "pod_startup": {"p50": 0.01, "p90": 0.02, "p99": 0.03}, "pod_startup_pass": True,
                         "scheduling_throughput": {"mean": 5.0}}, "apiserver": {"slo_pass": True},
             "processes": {"busiest": "etcd", "components": {"etcd": {"cpu_cores": 0.5}}}}),
    ])}
    md = merge.to_markdown(doc)
    assert "| open-rate10-life1 r1 | 10.0 | 9.5 | 9.5 | 0.950 | 0.0040 / 0.0100 |" in md and "throttled 2 | FAIL |" in md
    assert "| 3 × 2 | 6 / 6 | 0.010 / 0.020 / 0.030 | pass | 5.0 | pass | etcd (0.50 cores) |" in md
    assert doc["results"][0]["summaries"]["achieved_rate"]["mean"] == 9.5


@pytest.mark.parametrize(
    "errors, operations, status",
    [({}, 200, "ok"), ({"timeout": 2}, 200, "ok"), ({"timeout": 3}, 200, "degraded"), ({"timeout": 198}, 209, "failed")],
    ids=["clean", "at-1%", "above-1%", "the-etcd-stall"],
)
def test_a_churn_sample_past_its_error_threshold_is_not_ok(errors, operations, status):
    summary = {"errors": errors, "operations": operations, "error_ratio": sum(errors.values()) / operations}
    judged, why = churn.judge(summary)
    assert judged == status
    assert (why is None) == (status == "ok")
    if why:
        assert f"of {operations} operations failed" in why and "threshold" in why


def test_the_objects_add_up_even_when_the_client_saw_creates_fail():
    # The stalled sample of the reliability report: 11 creates confirmed, 198 timed out, of which
    # the server made 150 anyway; the run deleted none of them, the sweep removed 161.
    summary = {"created": 11, "deleted": 0}
    churn.account(summary, {"swept": 161, "left": 0})
    o = summary["objects"]
    assert o == {"created_ok": 11, "created_unconfirmed": 150, "deleted_ok": 0, "swept": 161, "left": 0}
    assert o["created_ok"] + o["created_unconfirmed"] == o["deleted_ok"] + o["swept"] + o["left"]
