"""The burst client against sockets of its own on 127.0.0.1 (no cluster needed):
what it does when the other end is slow, silent or quick."""
import asyncio
import socket
import threading

import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import burst

BODY = b'{"cluster": "c", "instance": "c-0", "server_ms": 0.1}'
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)


class Server:
    """A tiny HTTP server in a thread: answers every request after ``delay`` seconds
    (never, if None); counts the requests it received."""

    def __init__(self, delay):
        self.delay, self.received = delay, 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(5)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        server = self

        class Proto(asyncio.Protocol):
            def connection_made(self, transport):
                self.transport, self.buf = transport, b""

            def data_received(self, data):
                self.buf += data
                while b"\r\n\r\n" in self.buf:
                    _, self.buf = self.buf.split(b"\r\n\r\n", 1)
                    server.received += 1
                    if server.delay is not None:
                        server.loop.call_later(server.delay, self.transport.write, ANSWER)

        self.server = self.loop.run_until_complete(self.loop.create_server(Proto, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def server(request):
    s = Server(request.param)
    yield s
    s.close()


@pytest.mark.parametrize("server", [None], indirect=True)
def test_requests_beyond_max_inflight_are_never_sent_and_the_run_is_saturated(server):
    out = burst.run([f"http://127.0.0.1:{server.port}/echo"], burst.Schedule(0.05, (10, 2), timeout=0.3, max_inflight=3))
    errors = out["totals"]["errors"]
    # Three went out and timed out (nobody answers); everything else was refused by the client itself.
    assert errors == {"timeout": 3, "client_overload": 9}, errors
    assert server.received == 3
    not_sent = [r for r in out["requests"] if r["error"] == "client_overload"]
    assert all(r["lag"] is None and r["latency"] is None for r in not_sent)
    assert out["client"]["saturated"] and out["client"]["saturated_slots"] == [0, 1]
    assert out["client"]["peak_inflight"] == 3
    assert "request(s) not sent (client_overload)" in out["client"]["verdict"]


@pytest.mark.parametrize("server", [0.4], indirect=True)
def test_an_answer_after_the_timeout_is_a_timeout_never_a_long_ok(server):
    out = burst.run([f"http://127.0.0.1:{server.port}/echo"], burst.Schedule(0.05, (2,), timeout=0.2))
    assert out["totals"]["errors"] == {"timeout": 2} and out["totals"]["successes"] == 0
    assert all(r["latency"] is None or r["latency"] <= 0.2 for r in out["requests"])


@pytest.mark.parametrize("server", [0.0], indirect=True)
@pytest.mark.parametrize("processes", [1, 2])
def test_on_a_quick_server_every_request_is_sent_once_and_answered(server, processes):
    requests = (1, 4, 4, 1)
    out = burst.run([f"http://127.0.0.1:{server.port}/echo"], burst.Schedule(0.05, requests, timeout=2, processes=processes))
    assert out["totals"]["successes"] == sum(requests) == server.received
    assert [s["requests"] for s in out["slots"]] == list(requests)
    assert {r["worker"] for r in out["requests"]} == set(range(processes))
    for r in out["requests"]:
        assert r["scheduled"] == pytest.approx(r["slot"] * 0.05, abs=1e-6)
        assert r["lag"] == pytest.approx(r["start"] - r["scheduled"], abs=2e-6) and r["lag"] >= 0
        assert r["cluster"] == "c" and r["server_ms"] == 0.1
    assert out["client"]["processes"] == processes and out["client"]["cpu_seconds"] > 0


def test_a_port_nobody_listens_on_is_connect_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        out = burst.run([f"http://127.0.0.1:{port}/"], burst.Schedule(0.05, (2,), timeout=1))
    assert out["totals"]["errors"] == {"connect_error": 2}


def _params(tmp_path, target, **more):
    params = dict(targets=[target], allowed_hosts=[], slot_seconds=0.05, requests=[2, 2], spike=6, timeout=1.0, duration=None,
                  max_inflight=burst.MAX_INFLIGHT, lag_limit=1.0, processes=1, ca_file=None, cert_file=None, key_file=None, verify=True,
                  framework="istio-emulated", profile="default", local_cluster="c", repetition=1, testbed=[], run_id="r",
                  results_dir=str(tmp_path))
    return {**params, **more}


@pytest.mark.parametrize("server", [0.0], indirect=True)
def test_the_modules_run_keeps_an_answered_burst_as_ok(server, tmp_path):
    import json
    from pathlib import Path

    out = burst.burst_from_params(_params(tmp_path, f"http://127.0.0.1:{server.port}/echo"))
    assert not out.failed, out.message
    kept = json.loads(Path(out.result["path"]).read_text())
    assert kept["experiment"] == "burst" and kept["samples"][0]["status"] == "ok" and kept["samples"][0]["totals"]["local_share"] == 1.0


def test_the_modules_run_keeps_a_burst_nothing_answered_as_failed_and_fails(tmp_path):
    import json
    from pathlib import Path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        out = burst.burst_from_params(_params(tmp_path, f"http://127.0.0.1:{s.getsockname()[1]}/"))
    assert out.failed and "none of 4 requests succeeded" in out.message, out.message
    assert json.loads(Path(out.result["path"]).read_text())["samples"][0]["status"] == "failed"
