import os
import subprocess
import sys
import time

import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils.common import process, procfs

# exit(2) ends only the calling thread, where exit_group ends them all.
SYS_EXIT = {"x86_64": 60, "aarch64": 93}.get(os.uname().machine)

# The main thread listens, starts a thread that sleeps, and exits alone: what a
# killed Go program's main thread can do while its others still run.
LEADER_EXITS_FIRST = f"""
import ctypes, socket, sys, threading, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True)
threading.Thread(target=time.sleep, args=(30,)).start()
time.sleep(0.2)
ctypes.CDLL(None).syscall({SYS_EXIT}, 0)
"""


@pytest.mark.skipif(SYS_EXIT is None, reason="the exit syscall's number is known for x86_64 and aarch64 only")
def test_a_process_whose_main_thread_exited_lives_while_its_other_threads_hold_its_sockets(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", LEADER_EXITS_FIRST, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        port = int(child.stdout.readline())
        deadline = time.monotonic() + 10
        while state(child.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert state(child.pid) == "Z"  # the main thread is gone ...
        with open(f"/proc/{child.pid}/cmdline", "rb") as own:
            assert own.read() == b""  # ... and so is its own command line
        assert port in process.listening_ports()
        assert procfs.alive(child.pid)
        assert str(tmp_path) in procfs.cmdline(child.pid)  # read from a thread still running
        assert list(process.processes_under(tmp_path)) == [child.pid]
        # kill_all waits for the last thread, so the socket is closed when it returns
        assert process.kill_all([child.pid]) == [child.pid]
        assert not procfs.alive(child.pid)
        assert port not in process.listening_ports()
    finally:
        child.kill()
        child.wait()


def state(pid):
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]

def test_a_live_process_lives_and_a_reaped_one_does_not():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    assert procfs.alive(child.pid)
    child.kill()
    child.wait()
    assert not procfs.alive(child.pid)
    assert not procfs.alive(os.getpid() + 10**7)  # beyond any pid


def test_an_unreaped_zombie_is_not_alive():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while procfs.alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not procfs.alive(child.pid)  # exited, not yet waited for
    child.wait()


@pytest.mark.parametrize("command, path, named", [
    ("etcd --data-dir=/x/wd/kwok/etcd", "/x/wd", True),
    ("python /x/wd/supervisor/supervise.py --work-dir /x/wd", "/x/wd", True),
    ("sleep 30 /x/wd", "/x/wd", True),
    ("etcd --data-dir=/x/wd-b/kwok/etcd", "/x/wd", False),
    ("etcd --data-dir=/x/wd.old/kwok", "/x/wd", False),
    ("etcd --data-dir=/y/x/wd/kwok", "/x/wd", False),
    ("kube-apiserver --etcd=/x/wdb --cert=/x/wd/pki/a.crt", "/x/wd", True),
    ("kube-apiserver --cert=/wd/kwok/clusters/c10/pki/a.crt", "/wd/kwok/clusters/c1", False),
])
def test_a_path_is_named_whole_never_as_the_prefix_of_another(command, path, named):
    assert procfs.names_path(command, path) is named


def test_processes_under_a_work_dir_leave_out_a_neighbour_whose_name_it_starts(tmp_path):
    mine, neighbour = tmp_path / "wd", tmp_path / "wd-b"
    procs = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", str(d / "kwok" / "etcd")]) for d in (mine, neighbour)]
    try:
        found = process.processes_under(mine)
        assert procs[0].pid in found and procs[1].pid not in found
        assert procs[1].pid in process.processes_under(neighbour)
    finally:
        for p in procs:
            p.kill()
            p.wait()


# A shell that names the work dir (as make bench's recipe does, for its lock)
# runs the teardown; the teardown's search finds the work dir's other process,
# never the shell it runs under.
ASKS_FROM_A_SHELL = """
import sys
from ansible_collections.fedbench.testbed.plugins.module_utils.common import process
print(sorted(process.processes_under(__import__("pathlib").Path(sys.argv[1]))))
"""


def test_the_run_that_asks_is_never_one_of_its_work_dirs_processes(tmp_path):
    work = tmp_path / "wd"
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", str(work / "kwok" / "etcd")])
    try:
        shell = subprocess.run(
            ["bash", "-c", f'mkdir -p "{work}" && exec 9>>"{work}/run.lock"; "{sys.executable}" -c "$0" "{work}"; true', ASKS_FROM_A_SHELL],
            capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        assert shell.stdout.strip() == str([server.pid]), shell.stdout + shell.stderr
    finally:
        server.kill()
        server.wait()


def test_lineage_is_this_process_and_every_parent_up_to_init():
    mine = procfs.lineage(os.getpid())
    assert {os.getpid(), os.getppid(), 1} <= mine
    assert procfs.parent(os.getpid()) == os.getppid()
