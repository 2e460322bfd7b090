"""The recorder survives a 410 Gone and a dropped connection (a fake API client: unit test only)."""
import json
import threading
import time

from ansible_collections.fedbench.testbed.plugins.module_utils.kube import watch


def pod(name, rv, phase="Pending"):
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": str(rv)}, "spec": {}, "status": {"phase": phase}}


class FakeResponse:
    def __init__(self, status=200, data=b"", lines=(), error=None):
        self.status, self.reason, self.data, self._lines, self._error = status, "OK", data, list(lines), error
        self.response = self

    def read(self):
        return self.data

    def stream(self, *_args, **_kw):
        for line in self._lines:
            yield (json.dumps(line) + "\n").encode()
        if self._error:
            raise self._error

    def release_conn(self):
        pass

    def shutdown(self):
        pass

    def close(self):
        pass


class FakeApi:
    """Scripted answers: lists and watch streams, in order; then idle watches."""

    def __init__(self, script):
        self.script = list(script)
        self.calls = []
        self.lock = threading.Lock()

    def param_serialize(self, method, path, query_params=None, **_kw):
        return method, (path, dict(query_params or [])), {}, None, None

    def call_api(self, method, url, headers, body, post, _request_timeout=None):
        path, query = url
        with self.lock:
            self.calls.append(query)
            if self.script:
                return self.script.pop(0)
        time.sleep(0.05)
        return FakeResponse(lines=[])


def listing(items, rv):
    return FakeResponse(data=json.dumps({"metadata": {"resourceVersion": str(rv)}, "items": items}).encode())


def test_relists_after_410_and_rewatches_after_a_dropped_connection():
    api = FakeApi([
        listing([pod("a", 1)], 10),
        FakeResponse(lines=[{"type": "ADDED", "object": pod("b", 11)}], error=ConnectionResetError("dropped")),
        FakeResponse(lines=[{"type": "MODIFIED", "object": pod("b", 12, "Running")},
                            {"type": "ERROR", "object": {"code": 410, "message": "too old resource version"}}]),
        listing([pod("b", 20, "Running"), pod("c", 21)], 21),  # a vanished while we were away
        FakeResponse(lines=[{"type": "DELETED", "object": pod("c", 22)}]),
    ])
    rec = watch.Recorder([watch.Target("c1", api, "ns", "Pod")], reconnect_delay=0.01)
    rec.start()
    try:
        assert rec.wait_until(lambda s: any(e.type == "DELETED" and e.name == "c" for e in s.events), time.monotonic() + 5)
    finally:
        rec.stop()
    kinds = [(e.type, e.name) for e in rec.events()]
    assert kinds[:3] == [("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "b")]
    assert ("RELIST", "b") in kinds and ("RELIST", "c") in kinds and ("DELETED", "a") in kinds
    assert rec.relists == 1 and rec.reconnects >= 1
    # The re-watch after the dropped connection resumed from the last resourceVersion seen.
    watches = [q for q in api.calls if q.get("watch") == "true"]
    assert watches[0]["resourceVersion"] == "10" and watches[1]["resourceVersion"] == "11"
    assert watches[2]["resourceVersion"] == "21"  # after the relist
    assert {e.name for e in rec.state.of("Pod")} == {"b"}


def test_a_watch_error_other_than_410_fails_the_waiter():
    api = FakeApi([
        listing([], 5),
        FakeResponse(lines=[{"type": "ERROR", "object": {"code": 500, "message": "etcd is unhappy"}}]),
    ])
    rec = watch.Recorder([watch.Target("c1", api, "ns", "Pod")], reconnect_delay=0.01)
    rec.start()
    try:
        try:
            rec.wait_until(lambda s: False, time.monotonic() + 5)
            raise AssertionError("the waiter did not fail")
        except watch.WatchFailed as exc:
            assert "etcd is unhappy" in str(exc)
    finally:
        rec.stop()
