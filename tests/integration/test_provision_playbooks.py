"""The playbooks as a user runs them: provision, idempotence, bad input, teardown."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils.common import process
from ansible_collections.fedbench.testbed.plugins.module_utils.build import toolchain
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import embedded
from tests.conftest import pinned

from .conftest import ROOT


def _clusters(n: int, nodes: int = 1) -> list[dict]:
    ports = embedded.free_ports(n)
    return [
        {"name": f"t{i}", "role": "host" if i == 0 else "member", "nodes": nodes, "apiserver_port": ports[i]}
        for i in range(n)
    ]


def _failed_with(proc: subprocess.CompletedProcess, message: str) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert message in " ".join(out.split()), out[-3000:]


def test_provision_twice_then_teardown_twice(playbooks):
    playbooks.inventory_with({"fedbench_testbed": "embedded", "fedbench_clusters": _clusters(2)})
    first = playbooks.run("playbooks/toolchain.yml", "playbooks/provision.yml")
    assert first.returncode == 0, first.stdout[-3000:]
    assert f"Kubernetes {pinned()['kubernetes']}, 1 nodes" in first.stdout
    second = playbooks.run("playbooks/toolchain.yml", "playbooks/provision.yml")
    assert second.returncode == 0, second.stdout[-3000:]
    assert "changed=0" in second.stdout, second.stdout[-3000:]
    kubeconfigs = playbooks.work_dir / "kubeconfigs"
    assert sorted(p.name for p in kubeconfigs.iterdir()) == ["t0", "t1"]
    assert all((p.stat().st_mode & 0o777) == 0o600 for p in kubeconfigs.iterdir())
    down = playbooks.teardown()
    assert down.returncode == 0 and "deleted t0, t1" in down.stdout, down.stdout[-3000:]
    again = playbooks.teardown()
    assert again.returncode == 0 and "deleted nothing" in again.stdout, again.stdout[-3000:]
    assert not process.processes_under(playbooks.work_dir)


@pytest.mark.parametrize(
    "group_vars, message",
    [
        ({"fedbench_testbed": "cloud9", "fedbench_clusters": _clusters(1)},
         "value of fedbench_testbed must be one of: embedded, kind, existing, got: cloud9"),
        ({"fedbench_testbed": "embedded", "fedbench_clusters": []},
         "the list of clusters is empty: the testbed needs at least one cluster"),
        ({"fedbench_testbed": "embedded", "fedbench_clusters": [{"name": "a", "apiserver_port": 40001}, {"name": "a", "apiserver_port": 40002}]},
         "cluster name 'a' appears twice in the list of clusters"),
        ({"fedbench_testbed": "kind", "fedbench_clusters": [{"name": "k1", "role": "host"}]},
         "cluster 'k1': apiserver_port is required (the API server is published on 127.0.0.1 at it)"),
        ({"fedbench_testbed": "embedded", "fedbench_clusters": [{"name": "s1", "apiserver_port": 31601, "control_plane": {"kube-apiserver": {"cpus": -1}}}]},
         "cluster 's1': control_plane.kube-apiserver.cpus must be above 0 cores, got -1"),
        ({"fedbench_testbed": "kind", "fedbench_clusters": [{"name": "s2", "apiserver_port": 31602, "control_plane": {"etcd": {"memory": "1Gi"}}}]},
         "cluster 's2': control_plane limits the embedded testbed's processes only; fedbench_testbed is 'kind'"),
        ({"fedbench_testbed": "embedded", "fedbench_clusters": [{"name": "s3", "apiserver_port": 31603, "datastore": "mysql"}]},
         "cluster 's3': datastore must be one of etcd, kine-sqlite, kine-postgres, got 'mysql'"),
    ],
    ids=["unknown-testbed", "zero-clusters", "duplicate-name", "kind-without-a-port", "negative-cpus", "limits-on-kind", "unknown-datastore"],
)
def test_bad_input_fails_with_a_message_that_names_it(playbooks, group_vars, message):
    playbooks.inventory_with(group_vars)
    proc = playbooks.run("playbooks/toolchain.yml", "playbooks/provision.yml")
    _failed_with(proc, message)


@pytest.mark.parametrize("playbook", ["site.yml", "playbooks/teardown.yml", "playbooks/report.yml"])
def test_an_inventory_without_a_controller_fails_naming_it(playbooks, tmp_path, playbook):
    """A mistyped path, or a file that is no inventory of the project, fails at once
    (it once printed "no hosts matched" and exited 0, as if the run had happened)."""
    mistyped = tmp_path / "inventories" / "tesbed"
    proc = subprocess.run([*playbooks.command(playbook)[:2], str(mistyped), *playbooks.command(playbook)[3:]],
                          cwd=ROOT, env=playbooks.env(), capture_output=True, text=True, timeout=120, check=False)
    _failed_with(proc, f"Unable to parse {mistyped} as an inventory source")
    hostless = tmp_path / "hosts.ini"
    hostless.write_text("somewhere.invalid\n")
    proc = subprocess.run([*playbooks.command(playbook)[:2], str(hostless), *playbooks.command(playbook)[3:]],
                          cwd=ROOT, env=playbooks.env(), capture_output=True, text=True, timeout=120, check=False)
    _failed_with(proc, f"the inventory {hostless} has no host in group 'controller'")
    make = subprocess.run(["make", "-s", "clean", f"INVENTORY={mistyped}"], cwd=ROOT, env=playbooks.env(), capture_output=True, text=True,
                          timeout=120, check=False)
    assert make.returncode == 2 and f"INVENTORY={mistyped}: no such inventory" in make.stderr, make.stdout + make.stderr


@pytest.mark.parametrize("extra, message", [
    ("experiment_sizing_profile=bogus", "value of experiment_sizing_profile must be one of: quick, full, got: bogus"),
    ("experiment_lifecycle_max_replicas=0", "experiment_lifecycle_max_replicas (0) and experiment_lifecycle_repetitions (3) must be whole numbers"),
    ("experiment_lifecycle_warmup=maybe", "argument 'experiment_lifecycle_warmup' is of type str and we were unable to convert to bool"),
    ("experiment_apimachinery_repetitions=x", "argument 'experiment_apimachinery_repetitions' is of type str and we were unable to convert to int"),
])
def test_a_wrong_extra_variable_is_named_before_anything_is_built(playbooks, extra, message):
    """-e values are checked by the first play, before the toolchain builds or any cluster starts."""
    playbooks.inventory_with({"fedbench_testbed": "embedded", "fedbench_clusters": _clusters(1)})
    proc = playbooks.run("site.yml", extra=("-e", extra))
    _failed_with(proc, message)
    assert "TASK [toolchain : Look in the cache" not in proc.stdout, proc.stdout[-2000:]
    assert not (playbooks.work_dir / "kwok").exists()


def test_a_colliding_datastore_port_is_named_before_the_toolchain(playbooks):
    clusters = _clusters(2)
    clusters[1].update(datastore="kine-postgres", datastore_port=clusters[0]["apiserver_port"])
    playbooks.inventory_with({"fedbench_testbed": "embedded", "fedbench_clusters": clusters})
    proc = playbooks.run("site.yml")
    _failed_with(proc, f"cluster 't1': datastore_port {clusters[0]['apiserver_port']} is also the port of cluster 't0'")
    assert "TASK [toolchain : Look in the cache" not in proc.stdout, proc.stdout[-2000:]


def test_tags_that_name_only_a_framework_this_testbed_cannot_run_fail_with_its_reason(playbooks):
    playbooks.inventory_with({"fedbench_testbed": "embedded", "fedbench_clusters": _clusters(2), "fedbench_frameworks": ["native", "liqo"],
                              "fedbench_apimachinery": False, "fedbench_sizing": False})
    proc = playbooks.run("site.yml", extra=("--tags", "liqo"))
    _failed_with(proc, "--tags names only what cannot run on this testbed (embedded), so nothing would be measured: liqo: ")


def test_a_second_run_in_the_same_work_dir_is_refused_while_the_first_holds_its_lock(playbooks):
    import fcntl

    playbooks.inventory_with({"fedbench_testbed": "embedded", "fedbench_clusters": _clusters(1)})
    playbooks.work_dir.mkdir(parents=True, exist_ok=True)
    with open(playbooks.work_dir / "run.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        (playbooks.work_dir / "run.pid").write_text("4242\n")
        make = subprocess.run(["make", "-s", "clean", f"INVENTORY={playbooks.inventory}"], cwd=ROOT, env=playbooks.env(),
                              capture_output=True, text=True, timeout=300, check=False)
    assert make.returncode != 0, make.stdout[-2000:]
    assert f"another make bench, provision or clean is running in {playbooks.work_dir} (pid 4242)" in make.stderr, make.stderr[-2000:]
    assert "PLAY [" not in make.stdout
    again = subprocess.run(["make", "-s", "clean", f"INVENTORY={playbooks.inventory}"], cwd=ROOT, env=playbooks.env(),
                           capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0, (again.stdout + again.stderr)[-2000:]


def test_missing_kubeconfig_context_is_named(playbooks, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        "clusters: [{name: a, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: a, user: {token: x}}]\n"
        "contexts: [{name: site-a, context: {cluster: a, user: a}}]\ncurrent-context: site-a\n"
    )
    kubeconfig.chmod(0o600)
    playbooks.inventory_with({"fedbench_testbed": "existing", "fedbench_clusters": [
        {"name": "site-x", "role": "host", "kubeconfig": str(kubeconfig), "context": "no-such-context"}]})
    proc = playbooks.run("playbooks/toolchain.yml", "playbooks/provision.yml")
    _failed_with(proc, "cluster site-x: kubeconfig context no-such-context does not answer")


def test_non_integer_nodes_message(playbooks):
    playbooks.inventory_with({"fedbench_testbed": "embedded", "fedbench_clusters": [{"name": "a", "nodes": "four", "apiserver_port": 40001}]})
    proc = playbooks.run("playbooks/toolchain.yml", "playbooks/provision.yml")
    _failed_with(proc, "inventory: cluster 'a': nodes must be a whole number, got 'four'")


def test_port_already_taken_is_named(playbooks):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        playbooks.inventory_with({"fedbench_testbed": "embedded", "fedbench_clusters": [{"name": "busy", "apiserver_port": port}]})
        proc = playbooks.run("playbooks/toolchain.yml", "playbooks/provision.yml")
    _failed_with(proc, f"cluster 'busy': apiserver_port {port} is already in use on 127.0.0.1")
    assert not process.processes_under(playbooks.work_dir)


def test_missing_binary_with_source_path_is_named(playbooks, tmp_path):
    playbooks.inventory_with({"fedbench_testbed": "embedded", "fedbench_clusters": _clusters(1)})
    env = playbooks.env()
    env["PATH"] = os.pathsep.join([os.path.dirname(playbooks.command()[0]), "/usr/bin", "/bin"])  # no kube-apiserver there
    proc = subprocess.run(
        playbooks.command("playbooks/toolchain.yml", extra=("-e", "toolchain_source=path")),
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    _failed_with(proc, f"kube-apiserver {pinned()['kubernetes']} is required with toolchain source 'path', but it is not on PATH")


def test_interrupted_provision_then_teardown_leaves_nothing(playbooks):
    clusters = _clusters(3, nodes=2)
    playbooks.inventory_with({"fedbench_testbed": "embedded", "fedbench_clusters": clusters})
    before = process.listening_sockets()  # not the testbed's, even if one of its processes inherited one
    proc = subprocess.Popen(
        playbooks.command("playbooks/toolchain.yml", "playbooks/provision.yml"),
        env=playbooks.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        # Halfway: some control-plane processes are up, the play is not done.
        deadline = time.monotonic() + 120
        while len(process.processes_under(playbooks.work_dir)) < 4:
            assert proc.poll() is None, "the provision finished before it could be interrupted"
            assert time.monotonic() < deadline, "no testbed process appeared"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    time.sleep(1)  # let whatever kwokctl had in flight settle
    survivors = process.processes_under(playbooks.work_dir)
    sockets = process.listening_sockets_of(survivors) - before
    assert survivors, "killing ansible-playbook should leave the detached control planes running"

    down = playbooks.teardown()
    assert down.returncode == 0, down.stdout[-3000:]
    assert not process.processes_under(playbooks.work_dir)
    still = sorted(sockets & process.listening_sockets())
    still += sorted({c["apiserver_port"] for c in clusters} & process.listening_ports())
    assert not still, f"still listening after teardown: {still}"


def test_a_provision_interrupted_with_ctrl_c_says_how_to_tear_down(playbooks):
    """SIGINT (Ctrl-C) halfway through a provision run as `ansible-playbook`:
    the output says the testbed may still run and how to tear it down, and
    that teardown leaves nothing."""
    clusters = _clusters(2, nodes=2)
    playbooks.inventory_with({"fedbench_testbed": "embedded", "fedbench_clusters": clusters})
    proc = subprocess.Popen(playbooks.command("playbooks/toolchain.yml", "playbooks/provision.yml"), env=playbooks.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(process.processes_under(playbooks.work_dir)) < 2:
            assert proc.poll() is None, "the provision finished before it could be interrupted"
            assert time.monotonic() < deadline, "no testbed process appeared"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    flat = " ".join(out.split())
    assert proc.returncode != 0
    assert "fedbench: the run was interrupted before it finished. What it started may still be running; tear it down with" in flat, out[-3000:]
    assert f"ansible-playbook playbooks/teardown.yml -i {playbooks.inventory}" in flat
    down = playbooks.teardown()
    assert down.returncode == 0 and "fedbench: the run" not in down.stdout, down.stdout[-3000:]
    assert not process.processes_under(playbooks.work_dir)
    assert not {c["apiserver_port"] for c in clusters} & process.listening_ports()


USER_KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: mine, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: me, user: {token: not-a-secret}}]
contexts: [{name: mine, context: {cluster: mine, user: me}}]
current-context: mine
"""


def test_the_users_kubeconfig_is_never_touched_and_every_key_is_private(playbooks, tmp_path):
    # The user's ~/.kube/config, with a context of their own as the current one.
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text(USER_KUBECONFIG)
    env = playbooks.env(HOME=str(home), FEDBENCH_CACHE=str(toolchain.cache_root()))
    playbooks.inventory_with({"fedbench_testbed": "embedded", "fedbench_clusters": _clusters(2)})
    up = subprocess.run(playbooks.command("playbooks/toolchain.yml", "playbooks/provision.yml"), cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=600, check=False)
    assert up.returncode == 0, up.stdout[-3000:]
    assert (home / ".kube" / "config").read_text() == USER_KUBECONFIG
    secrets = [*(playbooks.work_dir / "kwok").rglob("*.key"), *(playbooks.work_dir / "kwok").rglob("kubeconfig*"),
               *(playbooks.work_dir / "kubeconfigs").iterdir()]
    assert len(secrets) >= 2 * 3, secrets
    loose = {str(p): oct(p.stat().st_mode & 0o777) for p in secrets if p.stat().st_mode & 0o077}
    assert not loose, f"keys or kubeconfigs readable by others: {loose}"
    down = subprocess.run(playbooks.command("playbooks/teardown.yml"), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert down.returncode == 0, down.stdout[-3000:]
    assert (home / ".kube" / "config").read_text() == USER_KUBECONFIG
    assert sorted(p.name for p in (home / ".kube").iterdir()) == ["config"]
