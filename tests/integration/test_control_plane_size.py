"""Control-plane size on the embedded testbed: CPU and memory limits per
component through cgroup v1, on real control planes. The limits are read
back from the cgroup files, a restarted component goes back into its groups,
a CPU-capped API server is measurably slower on a fixed churn, a memory limit
below what a component uses is refused with the figure and leaves nothing,
and teardown removes every group."""
from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils import kube
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import cgroups, embedded, supervise

from .conftest import api_client, wait_until

needs_rights = pytest.mark.skipif(not (cgroups.ROOT / "cpu" / "cgroup.procs").exists() or os.geteuid() != 0,
                                  reason="needs cgroup v1 and root; the refusal without them is tested below")


def _spec(port: int, control_plane: dict) -> list:
    return embedded.parse_specs([{"name": "c0", "role": "host", "nodes": 1, "apiserver_port": port, "control_plane": control_plane}])


def _churn(facts, objects: int = 160, workers: int = 4) -> float:
    """Seconds to create and delete a fixed number of ConfigMaps in namespace "size" (each worker its own client)."""

    def work(index: int) -> None:
        api = api_client(facts)
        for i in range(objects // workers):
            name = f"w{index}-{i}"
            kube.request(api, "POST", "/api/v1/namespaces/size/configmaps", body={"metadata": {"name": name}, "data": {"k": "v" * 64}})
            kube.request(api, "DELETE", f"/api/v1/namespaces/size/configmaps/{name}")

    start = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(work, range(workers)))
    return time.monotonic() - start


@needs_rights
def test_limits_are_set_read_back_kept_across_a_restart_and_removed(testbeds):
    bed = testbeds.bed()
    port = embedded.free_ports(1)[0]
    wanted = {"kube-apiserver": {"cpus": 1.5, "memory": "3Gi"}, "etcd": {"cpuset": "0"}, "kube-scheduler": {"cpus": "250m"}}
    (facts,), _ = bed.up(_spec(port, wanted))
    assert facts.control_plane == {
        "kube-apiserver": {"cpus": 1.5, "memory_bytes": 3 * 2**30, "cpuset": None},
        "etcd": {"cpus": None, "memory_bytes": None, "cpuset": "0"},
        "kube-scheduler": {"cpus": 0.25, "memory_bytes": None, "cpuset": None},
    }
    cdir = bed.kwokctl.cluster_dir("c0")
    states = supervise.component_states(cdir)
    key = bed.cgroup_key
    # the files themselves, and the kernel's own view of each process
    apiserver = cgroups.group("cpu", key, "c0", "kube-apiserver")
    assert (apiserver / "cpu.cfs_quota_us").read_text().strip() == "150000"
    assert (apiserver / "cpu.cfs_period_us").read_text().strip() == "100000"
    assert (cgroups.group("memory", key, "c0", "kube-apiserver") / "memory.limit_in_bytes").read_text().strip() == str(3 * 2**30)
    assert (cgroups.group("cpuset", key, "c0", "etcd") / "cpuset.cpus").read_text().strip() == "0"
    own = Path(f"/proc/{states['kube-apiserver']['pid']}/cgroup").read_text().splitlines()
    assert {line.split(":", 1)[1] for line in own} >= {f"cpu:/fedbench/{key}/c0/kube-apiserver", f"memory:/fedbench/{key}/c0/kube-apiserver"}, own
    assert f"/fedbench/{key}/c0" not in Path(f"/proc/{states['kube-controller-manager']['pid']}/cgroup").read_text()
    # a second provision changes nothing
    again, changed = bed.up(_spec(port, wanted))
    assert not changed and again[0].control_plane == facts.control_plane

    # the supervisor's restart goes through the launcher: inside the groups from its start
    victim = states["kube-scheduler"]["pid"]
    os.kill(victim, signal.SIGKILL)
    restarted = wait_until(lambda: [r for r in bed.restarts() if r["component"] == "kube-scheduler" and r["running"]], 60, "kube-scheduler restarted")
    assert cgroups.read_back(key, "c0", "kube-scheduler")["pids"] == [restarted[0]["new_pid"]]

    # limits dropped from the inventory: the groups go and the processes stay
    (plain,), changed = bed.up(_spec(port, {"kube-apiserver": {"cpus": 1.5, "memory": "3Gi"}}))
    assert changed and set(plain.control_plane) == {"kube-apiserver"}
    assert not cgroups.group("cpuset", key, "c0", "etcd").exists() and not cgroups.group("cpu", key, "c0", "kube-scheduler").exists()
    assert bed.unhealthy() == []

    bed.down()
    assert bed.leftovers() == {"processes": {}, "ports": [], "clusters": [], "cgroups": [], "postgresql": []}
    assert not (cgroups.ROOT / "cpu" / "fedbench" / key).exists()


@needs_rights
def test_a_dedicated_etcd_runs_alone_on_the_first_cpu(testbeds):
    bed = testbeds.bed()
    port = embedded.free_ports(1)[0]
    specs = embedded.parse_specs([{"name": "c0", "role": "host", "nodes": 1, "apiserver_port": port, "topology": "dedicated-etcd"}])
    (facts,), _ = bed.up(specs)
    cpus = cgroups.online_cpus()
    first, rest = cgroups.format_cpus({min(cpus)}), cgroups.format_cpus(cpus - {min(cpus)})
    assert {c: v["cpuset"] for c, v in facts.control_plane.items()} == {
        "etcd": first, "kube-apiserver": rest, "kube-controller-manager": rest, "kube-scheduler": rest}
    # the kernel's own view of where each process may run
    for component, state in supervise.component_states(bed.kwokctl.cluster_dir("c0")).items():
        status = Path(f"/proc/{state['pid']}/status").read_text()
        allowed = next(line.split(":", 1)[1].strip() for line in status.splitlines() if line.startswith("Cpus_allowed_list"))
        assert allowed == {"etcd": first, "kwok-controller": cgroups.format_cpus(cpus)}.get(component, rest), (component, allowed)
    bed.down()
    assert bed.leftovers()["cgroups"] == []


@needs_rights
def test_a_cpu_capped_api_server_is_measurably_slower_on_a_fixed_churn(testbeds, capsys):
    bed = testbeds.bed()
    port = embedded.free_ports(1)[0]
    (facts,), _ = bed.up(_spec(port, {}))
    kube.request(api_client(facts), "POST", "/api/v1/namespaces", body={"metadata": {"name": "size"}})
    _churn(facts, objects=40)  # warm: connections, caches
    free = _churn(facts)
    (capped,), changed = bed.up(_spec(port, {"kube-apiserver": {"cpus": 0.1}}))
    assert changed and capped.control_plane["kube-apiserver"]["cpus"] == 0.1
    slow = _churn(facts)
    with capsys.disabled():
        print(f"\n[size] 160 ConfigMap creates and deletes, 4 workers: {free:.2f} s uncapped, {slow:.2f} s with kube-apiserver at 0.1 cores")
    assert slow > 2 * free, (free, slow)


@needs_rights
def test_memory_below_what_a_component_uses_is_refused_and_leaves_nothing(testbeds):
    bed = testbeds.bed()
    port = embedded.free_ports(1)[0]
    with pytest.raises(embedded.TestbedError) as err:
        bed.up(_spec(port, {"kube-apiserver": {"memory": "8Mi"}}))
    message = str(err.value)
    assert "cluster 'c0': control_plane.kube-apiserver.memory 8 MiB is below what kube-apiserver needs: the kernel killed it for memory" in message, message
    left = bed.leftovers()
    assert left == {"processes": {}, "ports": [], "clusters": [], "cgroups": [], "postgresql": []}, left
    assert bed.supervisor_pid() is None
    assert not embedded.port_in_use(port)


def test_without_the_rights_nothing_starts_and_the_variable_is_named():
    """As a user who may not write /sys/fs/cgroup: refused before any process starts."""
    import shutil
    import subprocess
    import sys
    import tempfile

    from .conftest import ROOT

    folder = Path(tempfile.mkdtemp(prefix="fedbench-nonroot-", dir="/tmp"))  # pytest's own tmp is root's only
    folder.chmod(0o777)
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT / 'collections')!r})\n"
        "from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import embedded\n"
        f"bed = embedded.EmbeddedTestbed(work_dir={str(folder)!r}, binaries=embedded.Binaries.from_mapping("
        "{k: '/bin/false' for k in ('kwokctl', 'kwok', 'etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubectl')}))\n"
        "try:\n"
        "    bed.up(embedded.parse_specs([{'name': 'c0', 'apiserver_port': %d, 'control_plane': {'etcd': {'cpus': 1}}}]))\n"
        "except embedded.TestbedError as exc:\n"
        "    print(exc); sys.exit(3)\n" % embedded.free_ports(1)[0]
    )
    if os.geteuid() == 0:
        def drop() -> None:
            os.setgid(65534)
            os.setuid(65534)
    else:
        drop = None  # already without the rights
    # a Python this user may run (the venv's lives under root's home)
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else os.path.realpath(sys.executable)
    try:
        out = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=60, preexec_fn=drop, cwd=folder)
        clusters = list(folder.glob("kwok/clusters/*"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "cluster 'c0': control_plane needs to create cgroups under /sys/fs/cgroup/cpu, which this user may not write (run as root)" in out.stdout \
        or "cluster 'c0': control_plane needs the cgroup v1 cpu controller" in out.stdout or "runs cgroup v2 only" in out.stdout, out.stdout
    assert not clusters
