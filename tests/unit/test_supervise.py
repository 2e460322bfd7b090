"""The supervisor's own logic: which components run, backoff, its record, and how a run's
results and summary carry the restarts."""
import json
import subprocess
import sys

from ansible_collections.fedbench.testbed.plugins.module_utils.report import merge
from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import supervise


def test_backoff_doubles_to_a_cap():
    assert [supervise.backoff(n) for n in (1, 2, 3, 4, 5, 6, 7)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_component_runs_only_as_a_live_process_of_its_own_cluster(tmp_path):
    cdir = tmp_path / "clusters" / "c1"
    (cdir / "pids").mkdir(parents=True)
    mine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(cdir)])
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    gone = subprocess.Popen([sys.executable, "-c", "pass", str(cdir)])
    gone.wait()
    try:
        (cdir / "pids" / "kube-apiserver.pid").write_text(f"{mine.pid}\n")
        (cdir / "pids" / "kube-scheduler.pid").write_text(f"{other.pid}\n")  # a recycled pid: not ours
        (cdir / "pids" / "kube-controller-manager.pid").write_text(f"{gone.pid}\n")
        (cdir / "pids" / "etcd.pid").write_text("garbage\n")
        states = supervise.component_states(cdir)
        assert {name: s["running"] for name, s in states.items()} == {
            "etcd": False, "kube-apiserver": True, "kube-controller-manager": False, "kube-scheduler": False}
        assert states["kube-controller-manager"]["log"] == str(cdir / "logs" / "kube-controller-manager.log")
    finally:
        for proc in (mine, other):
            proc.kill()
            proc.wait()


def test_the_record_survives_a_torn_last_line(tmp_path):
    path = tmp_path / "restarts.jsonl"
    path.write_text(json.dumps({"time": "2026-11-23T10:00:00.000Z", "cluster": "c", "component": "etcd"}) + "\n{\"time\": \"2026")
    assert [r["component"] for r in supervise.read_restarts(path)] == ["etcd"]
    assert supervise.read_restarts(tmp_path / "none.jsonl") == []


def test_a_run_carries_the_restarts_from_its_first_sample_on():
    restarts = [
        {"time": "2026-11-23T09:59:59.000Z", "cluster": "c", "component": "kube-scheduler", "running": True},
        {"time": "2026-11-23T10:00:05.000Z", "cluster": "c", "component": "kube-controller-manager", "running": False, "log": "/l"},
    ]
    envelopes = [{"sample": {"started_at": "2026-11-23T10:00:00.000Z"}}, {"sample": {"started_at": "2026-11-23T10:00:09.000Z"}}]
    kept = merge.run_restarts(restarts, envelopes)
    assert [r["component"] for r in kept] == ["kube-controller-manager"]
    lines = merge.restart_lines(kept)
    assert "## The testbed restarted components during this run" in lines
    assert "| 2026-11-23T10:00:05.000Z | c | kube-controller-manager | **no** | /l |" in lines
    assert merge.restart_lines([]) == []


def test_the_supervisor_runs_as_a_standalone_script_with_procfs_beside_it(tmp_path):
    # The testbed copies both files into its work dir and runs the script there,
    # where no ansible_collections package can be imported.
    import os
    import shutil

    from ansible_collections.fedbench.testbed.plugins.module_utils.common import procfs

    for module in (supervise, procfs):
        shutil.copy(module.__file__, tmp_path / os.path.basename(module.__file__))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, str(tmp_path / "supervise.py"), "--help"], capture_output=True, text=True,
                         timeout=30, cwd=tmp_path, env=env)
    assert out.returncode == 0 and "--work-dir" in out.stdout, out.stderr
    probe = subprocess.run([sys.executable, "-c", "import ansible_collections.fedbench"], capture_output=True, cwd=tmp_path, env=env)
    assert probe.returncode != 0  # so the script really ran on its own
