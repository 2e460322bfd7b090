"""Ports claimed per work dir: the same block again for the same work dir, never
another work dir's (even before anything binds it), a given port checked."""
import socket

import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils.testbed import ports


@pytest.fixture(autouse=True)
def claims(tmp_path, monkeypatch):
    monkeypatch.setattr(ports, "CLAIMS", tmp_path / "claims")


def test_a_work_dir_keeps_its_block_and_another_never_gets_it(tmp_path):
    a, b = tmp_path / "wd", tmp_path / "wd-b"
    first = ports.claim(a, {"gateway": {"count": 20}, "echo": {"count": 1, "given": 0}})
    assert ports.claim(a, {"gateway": {"count": 20}, "echo": {"count": 1}}) == first
    theirs = ports.claim(b, {"gateway": {"count": 20}, "echo": {"count": 1}})
    mine = set(range(first["gateway"], first["gateway"] + 20)) | {first["echo"]}
    assert not mine & (set(range(theirs["gateway"], theirs["gateway"] + 20)) | {theirs["echo"]})
    with pytest.raises(ports.PortError, match=f"echo_server_port: port {first['echo']} .* claimed by another fedbench work dir"):
        ports.claim(b, {"echo_server_port": {"count": 1, "given": first["echo"]}})
    assert len(ports.release(a)) == 21 and not (a / "ports.json").exists()
    assert ports.claim(b, {"echo_server_port": {"count": 1, "given": first["echo"]}}) == {"echo_server_port": first["echo"]}


def test_a_given_port_in_use_is_named(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        with pytest.raises(ports.PortError, match=f"kubefed_healthz_port: port {taken} on 127.0.0.1 is already in use; .* set kubefed_healthz_port to 0"):
            ports.claim(tmp_path / "wd", {"kubefed_healthz_port": {"count": 1, "given": taken}})


def test_a_claim_whose_work_dir_is_gone_is_stale(tmp_path):
    gone = ports.claim(tmp_path / "old", {"x": {"count": 1}})["x"]
    (tmp_path / "old" / "ports.json").unlink()
    assert ports.claim(tmp_path / "new", {"y": {"count": 1, "given": gone}}) == {"y": gone}
