"""Pure logic of the sizing sweep and the calculator: validation, judging a
step, the fits, the recommendation and its extrapolation marks, the report."""
import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import sizing, sizing_fit
from ansible_collections.fedbench.testbed.plugins.module_utils.report import registry
from ansible_collections.fedbench.testbed.plugins.module_utils.build import toolchain


@pytest.mark.parametrize("raw, message", [
    ([], "experiment_sizing_variants must be a non-empty list of variants, got []"),
    ([{"name": "a", "cpus": 1}], "variant #1: unknown key(s) cpus (known: name, control_plane, topology, datastore)"),
    ([{"name": "A_b"}], "variant #1: name must be a lowercase DNS label of at most 20 characters, got 'A_b'"),
    ([{"name": "a"}, {"name": "a"}], "variant name 'a' appears twice"),
])
def test_bad_variants_are_refused_naming_them(raw, message):
    with pytest.raises(sizing.SizingError) as exc:
        sizing.parse_variants(raw)
    assert str(exc.value) == message


@pytest.mark.parametrize("variant, message", [
    ({"name": "x", "datastore": "mysql"}, "variant 'x': datastore must be one of etcd, kine-sqlite, kine-postgres, got 'mysql'"),
    ({"name": "x", "control_plane": {"kube-apiserver": {"cpus": 0}}}, "variant 'x': control_plane.kube-apiserver.cpus"),
    ({"name": "x", "control_plane": {"kube-apiserver": {"cpus": -1}}}, "variant 'x': control_plane.kube-apiserver.cpus"),
])
def test_a_variant_the_testbed_would_refuse_is_refused_before_anything_starts(variant, message):
    with pytest.raises(sizing.SizingError) as exc:
        sizing.variant_specs(sizing.parse_variants([variant]), 2)
    assert str(exc.value).startswith(message)


@pytest.mark.parametrize("sweep, message", [
    ({"churn_factor": 1}, "experiment_sizing churn_factor must be above 1 (the ramp must grow), got 1"),
    ({"density_steps": [{"nodes": 10, "pods_per_node": 10}, {"nodes": 5, "pods_per_node": 10}]},
     "experiment_sizing density_steps[1]: 50 pods, not more than the step before (100): steps must grow"),
    ({"density_steps": [{"nodes": 1, "pods_per_node": 111}]}, "experiment_sizing density_steps[0].pods_per_node must be from 1 to 110, got 111"),
    ({"churn_step_seconds": 0}, "experiment_sizing churn_step_seconds must be a number above 0, got 0"),
])
def test_a_bad_sweep_is_refused_naming_it(sweep, message):
    with pytest.raises(sizing.SizingError) as exc:
        sizing.SweepSpec(**sweep)
    assert str(exc.value) == message


def test_an_unknown_sweep_key_or_missing_binaries_fail_the_module_naming_them():
    base = {"variants": [{"name": "a"}], "work_dir": "/nonexistent", "kubernetes_version": "v1.36.1", "run_id": "r", "results_dir": "/nonexistent"}
    out = sizing.sweep_from_params({**base, "sweep": {"churn_speed": 3}, "binaries": {}}, check_mode=True)
    assert out.failed and "churn_speed" in out.message
    out = sizing.sweep_from_params({**base, "sweep": {}, "binaries": {}}, check_mode=True)
    assert out.failed and out.message.startswith("missing binaries for the embedded testbed: kwokctl")


def _row(**over):
    return {"error_ratio": 0.0, "client_p99": 0.1, "server_p99": 0.1, "lag_p99": 0.01, **over}


def test_a_churn_step_is_judged_on_the_servers_sli_and_a_client_limit_is_named_as_such():
    spec = sizing.SweepSpec()
    assert sizing.churn_limits(_row(), spec) == []
    assert sizing.churn_limits(_row(server_p99=1.5), spec) == ["API server's mutating SLI p99 1.5 s > 1 s"]
    assert sizing.churn_limits(_row(error_ratio=0.05), spec) == ["errors 5.0% > 1%"]
    outside = sizing.churn_limits(_row(client_p99=3.0, host_busy=0.5), spec)
    assert outside == ["the client saw create p99 3.00 s while the server's SLI p99 was 0.10 s and the machine was 50 % busy: the time went "
                       "outside the server's handlers (its accept and TLS path, or the client's 256 connections)"]
    starved = sizing.churn_limits(_row(client_p99=3.0, host_busy=0.97), spec)
    assert "the machine was 97 % busy, the driver waited for the cores it shares with the control plane" in starved[0]
    assert sizing.CLIENT_BOUND in starved[0]
    assert sizing.CLIENT_BOUND in sizing.churn_limits(_row(lag_p99=2.0), spec)[0]
    assert sizing.churn_limits(_row(server_p99=None), spec) == ["API server's mutating SLI p99 None s > 1 s"]
    queued = sizing.churn_limits(_row(client_p99=3.0, server_duration_p99=2.5), spec)
    assert queued == ["API server's mutating request duration p99 2.50 s > 1 s while its SLI p99 was 0.10 s: requests queued in its "
                      "priority and fairness (in-flight limits)"]


def test_a_density_step_holds_the_pod_startup_and_api_slos():
    ok = {"status": "ok", "running": 10, "pods": 10, "pod_startup_p99": 4.9, "api_slo_pass": True, "api_slo_failed": []}
    assert sizing.density_limits(ok) == []
    assert sizing.density_limits({**ok, "pod_startup_p99": 5.1}) == ["pod startup p99 5.1 s > 5 s"]
    assert sizing.density_limits({**ok, "api_slo_pass": False, "api_slo_failed": ["POST pods p99 2 s"]}) == ["an API call SLO failed: POST pods p99 2 s"]


def test_a_line_fits_exact_points_and_refuses_degenerate_ones():
    fit = sizing_fit.fit_line([[1], [2], [3]], [3, 5, 7])
    assert fit["coefficients"] == [1.0, 2.0] and fit["r2"] == 1.0 and fit["points"] == 3
    assert sizing_fit.fit_line([[1], [2]], [3, 5]) is None  # as many points as coefficients
    assert sizing_fit.fit_line([[2], [2], [2]], [1, 2, 3]) is None  # no spread in x
    two = sizing_fit.fit_line([[10, 1], [20, 1], [30, 2], [40, 2]], [110, 120, 140, 150])
    assert [round(c, 6) for c in two["coefficients"]] == [90.0, 1.0, 10.0]


def _sample(name, store="etcd", cpus=None, rates=(50, 100, 200), capacity=200, pods=(100, 200, 400), server=0.1, mem_slope=0.5):
    comp = lambda rate: {"kube-apiserver": {"cpu_cores": 0.1 + rate / 1000, "rss_peak_mib": 300}, "etcd": {"cpu_cores": 0.05, "rss_peak_mib": 60}}
    return {
        "status": "ok", "run_id": "r1", "cores": 2,
        "variant": {"name": name, "datastore": store, "in_force": {"kube-apiserver": {"cpus": cpus, "memory_bytes": None, "cpuset": None}} if cpus else {}},
        "churn": {"capacity": capacity, "client_bound": False,
                  "steps": [{"achieved_rate": r, "error_ratio": 0.0, "server_p99": server, "components": comp(r)} for r in rates]},
        "density": {"steps": [{"status": "ok", "pod_startup_p99": 1.0, "api_slo_pass": True, "nodes": p // 10, "pods": p,
                               "components": {"kube-apiserver": {"cpu_cores": 0.2, "rss_peak_mib": 300 + mem_slope * p},
                                              "etcd": {"cpu_cores": 0.1, "rss_peak_mib": 60 - 0.01 * p}}} for p in pods]},
    }


def test_the_recommendation_is_the_fitted_line_and_marks_what_lies_outside_the_measured_range():
    samples = [_sample("full"), _sample("half", cpus=0.5, rates=(50, 100), capacity=100)]
    answer = sizing_fit.recommend(samples, sizing_fit.Target(nodes=1000, pods=30000, churn_rate=100))
    api = answer["components"]["kube-apiserver"]
    assert api["cpu"]["cores"] == pytest.approx(0.2) and api["cpu"]["extrapolation"] is False and api["cpu"]["fit"]["points"] == 5
    # pods and nodes move together in these steps: the memory line is on pods alone, and 30000 pods is far beyond them
    assert api["memory"]["model"].startswith("MiB = a + b * pods (") and api["memory"]["mib"] == pytest.approx(300 + 0.5 * 30000)
    assert api["memory"]["extrapolation"] is True
    # etcd's memory fell as pods grew: no line is drawn through that, and the answer says why
    assert answer["components"]["etcd"]["memory"]["mib"] is None and "did not grow" in answer["components"]["etcd"]["memory"]["why"]
    assert answer["apiserver_capacity"]["lowest_measured_cores_reaching_target"]["variant"] == "half"
    assert answer["runs"] == ["r1"] and any("75x the largest measured" in n for n in answer["notes"])
    text = "\n".join(sizing_fit.render(answer))
    assert "from runs: r1" in text and "*" in text and "0.5 cores -> 100/s (half)" in text


def test_the_target_slos_and_datastore_choose_the_steps():
    samples = [_sample("slow", server=0.8), _sample("kine", store="kine-sqlite")]
    strict = sizing_fit.recommend(samples, sizing_fit.Target(nodes=10, pods=100, churn_rate=100, mutating_p99=0.5, datastore="kine-sqlite"))
    assert strict["components"]["kube-apiserver"]["cpu"]["fit"]["points"] == 3  # only kine's steps
    with pytest.raises(sizing_fit.FitError, match="no sizing step on datastore etcd held the target's SLOs"):
        sizing_fit.recommend([_sample("slow", server=0.8, pods=())], sizing_fit.Target(nodes=10, pods=100, churn_rate=100, mutating_p99=0.5))
    with pytest.raises(sizing_fit.FitError, match="no finished sizing sample"):
        sizing_fit.recommend([], sizing_fit.Target(nodes=10, pods=100, churn_rate=100))
    with pytest.raises(sizing_fit.FitError, match="target nodes must be a whole number of 0 or more, got -1"):
        sizing_fit.Target(nodes=-1, pods=100, churn_rate=1)


def test_the_report_draws_the_sweep_and_the_calculators_answer():
    spec = registry.get("sizing")
    point = {"experiment": "sizing", "framework": "native", "run_id": "r1", "testbed": {"host": {"cores": 2}},
             "parameters": {"point": "full"}, "samples": [_sample("full")]}
    lines = spec.markdown([point])
    assert "## Control-plane sizing" in lines and any(line.startswith("| full | etcd | colocated | none | ok | 200 |") for line in lines)
    assert any("fedbench-size --nodes 1000 --pods 30000 --churn-rate 100 --datastore etcd" in line for line in lines)
    ids = [t.id for t in spec.tables([point])]
    assert ids == ["sizing", "sizing-answer"]
    assert spec.summarize(point["samples"])["churn_capacity"]["count"] == 1


def test_kine_is_built_with_cgo_and_its_version(tmp_path):
    plan = toolchain.build_plan("kine", ["kine"], toolchain.Versions(), tmp_path, {})
    assert plan.packages == {"kine": "github.com/k3s-io/kine@v0.17.5"} and plan.install
    assert plan.env["CGO_ENABLED"] == "1" and "-X github.com/k3s-io/kine/pkg/version.Version=v0.17.5" in plan.ldflags
