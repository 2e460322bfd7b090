# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Event capture: list, then watch from that resourceVersion, every event kept.

A :class:`Recorder` runs one thread per (cluster, kind) target. Each thread
lists the kind in the experiment's namespace, then watches from the list's
resourceVersion. A 410 Gone relists (every object is then recorded again as a
``RELIST`` event, so no state is lost) and watches on; a dropped connection
re-watches from the last resourceVersion seen. Any other error is kept and
raised to the waiter: the experiment fails instead of measuring blind. What a
watch message means is decided by :class:`listwatch.Cursor`, the protocol the
asyncio watchers (informer, density) follow too.

Every event carries two clocks: ``mono`` (``time.monotonic()``, for
intervals) and ``wall`` (ISO 8601 UTC with milliseconds, to label it).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ansible_collections.fedbench.testbed.plugins.module_utils import kube
from ansible_collections.fedbench.testbed.plugins.module_utils.kube import listwatch
from ansible_collections.fedbench.testbed.plugins.module_utils.common.clock import Mark

KINDS = ("Deployment", "ReplicaSet", "Pod")


# --------------------------------------------------------------------------
# The fields phases depend on, extracted from raw objects (pure).
# --------------------------------------------------------------------------


def _conditions(obj: dict) -> dict[str, dict]:
    return {c.get("type"): c for c in (obj.get("status") or {}).get("conditions") or []}


def pod_fields(obj: dict) -> dict[str, Any]:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    conds = _conditions(obj)
    scheduled = conds.get("PodScheduled", {})
    ready = conds.get("Ready", {})
    return {
        "node": spec.get("nodeName"),
        "phase": status.get("phase"),
        "scheduled": scheduled.get("status") == "True" or bool(spec.get("nodeName")),
        "ready": ready.get("status") == "True",
        "deleting": bool(meta.get("deletionTimestamp")),
        "owner": next((o.get("name") for o in meta.get("ownerReferences") or []), None),
        # apiserver-side evidence (second resolution)
        "created_at": meta.get("creationTimestamp"),
        "scheduled_at": scheduled.get("lastTransitionTime") if scheduled.get("status") == "True" else None,
        "started_at": status.get("startTime"),
        "ready_at": ready.get("lastTransitionTime") if ready.get("status") == "True" else None,
    }


def deployment_fields(obj: dict) -> dict[str, Any]:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    return {
        "replicas": spec.get("replicas"),
        "ready_replicas": status.get("readyReplicas") or 0,
        "available_replicas": status.get("availableReplicas") or 0,
        "generation": meta.get("generation"),
        "observed_generation": status.get("observedGeneration"),
        "deleting": bool(meta.get("deletionTimestamp")),
        "created_at": meta.get("creationTimestamp"),
    }


def replicaset_fields(obj: dict) -> dict[str, Any]:
    status = obj.get("status") or {}
    return {
        "replicas": (obj.get("spec") or {}).get("replicas"),
        "ready_replicas": status.get("readyReplicas") or 0,
        "owner": next((o.get("name") for o in (obj.get("metadata") or {}).get("ownerReferences") or []), None),
        "created_at": (obj.get("metadata") or {}).get("creationTimestamp"),
    }


FIELDS: dict[str, Callable[[dict], dict[str, Any]]] = {
    "Pod": pod_fields,
    "Deployment": deployment_fields,
    "ReplicaSet": replicaset_fields,
}


@dataclass
class Event:
    cluster: str
    kind: str
    type: str  # ADDED, MODIFIED, DELETED, or RELIST (re-read after a 410)
    name: str
    namespace: str
    resource_version: str
    mono: float
    wall: str
    fields: dict[str, Any]
    labels: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "kind": self.kind,
            "type": self.type,
            "name": self.name,
            "namespace": self.namespace,
            "resource_version": self.resource_version,
            "mono": round(self.mono, 6),
            "wall": self.wall,
            "fields": self.fields,
        }


def make_event(cluster: str, kind: str, etype: str, obj: dict, mark: Mark) -> Event:
    meta = obj.get("metadata") or {}
    return Event(
        cluster=cluster,
        kind=kind,
        type=etype,
        name=meta.get("name", ""),
        namespace=meta.get("namespace", ""),
        resource_version=meta.get("resourceVersion", ""),
        mono=mark.mono,
        wall=mark.wall,
        fields=FIELDS[kind](obj),
        labels=dict(meta.get("labels") or {}),
    )


# --------------------------------------------------------------------------
# Live state: the latest version of every object, per cluster and kind.
# --------------------------------------------------------------------------


class State:
    """What the watches have seen so far; read by the predicates.

    Objects are kept per kind, so a predicate over the Deployments does not
    scan thousands of pods on every event.
    """

    def __init__(self) -> None:
        self.by_kind: dict[str, dict[tuple[str, str], Event]] = {}
        self.events: list[Event] = []

    def apply(self, event: Event) -> None:
        self.events.append(event)
        objects = self.by_kind.setdefault(event.kind, {})
        key = (event.cluster, event.name)
        if event.type == "DELETED":
            objects.pop(key, None)
        else:
            objects[key] = event

    def of(self, kind: str, cluster: str | None = None) -> list[Event]:
        objects = self.by_kind.get(kind, {})
        if cluster is None:
            return list(objects.values())
        return [e for (c, _), e in objects.items() if c == cluster]

    def count(self, kind: str) -> int:
        return len(self.by_kind.get(kind, {}))


class WatchFailed(Exception):
    """A watch hit an error it cannot recover from; the message says which."""


@dataclass
class Target:
    """One kind in one namespace of one cluster."""

    cluster: str
    api_client: Any  # kubernetes.client.ApiClient
    namespace: str
    kind: str
    label_selector: str = ""


def _list_path(kind: str, namespace: str) -> str:
    if kind == "Pod":
        return f"/api/v1/namespaces/{namespace}/pods"
    if kind in ("Deployment", "ReplicaSet"):
        return f"/apis/apps/v1/namespaces/{namespace}/{kind.lower()}s"
    raise ValueError(f"cannot watch kind {kind!r}")


class Recorder:
    """Watches every target in its own thread and keeps every event."""

    def __init__(
        self,
        targets: Iterable[Target],
        *,
        watch_timeout: int = 60,
        reconnect_delay: float = 0.2,
        max_reconnects: int = 50,
    ):
        self.targets = list(targets)
        self.state = State()
        self.watch_timeout = watch_timeout
        self.reconnect_delay = reconnect_delay
        self.max_reconnects = max_reconnects
        self.relists = 0
        self.reconnects = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._synced = 0
        self._error: BaseException | None = None
        self._threads: list[threading.Thread] = []
        self._responses: list[Any] = []

    # -- lifecycle ------------------------------------------------------
    def start(self, timeout: float = 30) -> None:
        for target in self.targets:
            thread = threading.Thread(target=self._run, args=(target,), name=f"watch-{target.cluster}-{target.kind}", daemon=True)
            thread.start()
            self._threads.append(thread)
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._synced < len(self.targets):
                self._raise_if_failed()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WatchFailed(f"the watches did not complete their first list within {timeout:.0f}s")
                self._cond.wait(remaining)

    def stop(self) -> None:
        """Stop every watch now: a blocked read is interrupted, not waited out."""
        if self._stop.is_set():
            return
        self._stop.set()
        for resp in list(self._responses):
            try:
                resp.shutdown()  # urllib3 >= 2.3: unblocks a read in another thread
            except Exception:  # noqa: BLE001 - a socket that may be gone already
                pass
        for thread in self._threads:
            thread.join(timeout=10)

    def __enter__(self) -> "Recorder":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- waiting --------------------------------------------------------
    def wait_until(self, predicate: Callable[[State], bool], deadline: float) -> bool:
        """Block until ``predicate(state)`` holds (True) or the monotonic deadline passes (False).

        The current state is tested first, so a condition already met
        returns at once.
        """
        with self._cond:
            while True:
                self._raise_if_failed()
                if predicate(self.state):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 1.0))

    def events(self) -> list[Event]:
        with self._cond:
            return list(self.state.events)

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise WatchFailed(str(self._error)) from self._error

    # -- the watch loop -------------------------------------------------
    def _record(self, event: Event) -> None:
        with self._cond:
            self.state.apply(event)
            self._cond.notify_all()

    def _fail(self, exc: BaseException) -> None:
        with self._cond:
            if self._error is None:
                self._error = exc
            self._cond.notify_all()

    def _request(self, target: Target, params: dict[str, Any], stream: bool) -> Any:
        """GET the kind's collection; returns the raw urllib3 response (not read)."""
        query = [(k, v) for k, v in params.items() if v not in (None, "")]
        if target.label_selector:
            query.append(("labelSelector", target.label_selector))
        timeout = (5, self.watch_timeout + 15) if stream else 30
        return kube.raw(target.api_client, "GET", _list_path(target.kind, target.namespace), query=query, timeout=timeout)

    def _list(self, target: Target, etype: str) -> str:
        resp = self._request(target, {}, stream=False)
        body = json.loads(resp.data)
        mark = Mark.now()
        seen = set()
        for obj in body.get("items") or []:
            seen.add(obj["metadata"]["name"])
            self._record(make_event(target.cluster, target.kind, etype, obj, mark))
        if etype == "RELIST":
            # Objects deleted while we were not watching: record their deletion.
            with self._cond:
                gone = [e for e in self.state.of(target.kind, target.cluster) if e.name not in seen]
            for old in gone:
                self._record(Event(target.cluster, target.kind, "DELETED", old.name, old.namespace, "", mark.mono, mark.wall, old.fields, old.labels))
        return body["metadata"]["resourceVersion"]

    def _run(self, target: Target) -> None:
        cursor = listwatch.Cursor(what=f"{target.kind}s")
        try:
            cursor.listed(self._list(target, "ADDED"))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiter
            self._fail(WatchFailed(f"{target.cluster}: listing {target.kind}s in {target.namespace} failed: {exc}"))
            return
        with self._cond:
            self._synced += 1
            self._cond.notify_all()
        failures = 0
        while not self._stop.is_set():
            try:
                self._watch_once(target, cursor)
                cursor.dropped()
                failures = 0
            except listwatch.Gone:
                self.relists += 1
                try:
                    cursor.listed(self._list(target, "RELIST"), relist=True)
                except Exception as exc:  # noqa: BLE001
                    failures += 1
                    if failures > self.max_reconnects:
                        self._fail(WatchFailed(f"{target.cluster}: relisting {target.kind}s failed: {exc}"))
                        return
                    time.sleep(self.reconnect_delay)
            except listwatch.WatchError as exc:
                self._fail(WatchFailed(f"{target.cluster}: {exc}"))
                return
            except WatchFailed as exc:
                self._fail(exc)
                return
            except Exception as exc:  # noqa: BLE001 - connection drops come in many types
                if self._stop.is_set():
                    return
                if isinstance(exc, kube.KubeError) and exc.status not in (429, 500, 502, 503, 504):
                    self._fail(WatchFailed(f"{target.cluster}: watching {target.kind}s answered HTTP {exc.status}: {exc.reason}"))
                    return
                failures += 1
                self.reconnects += 1
                if failures > self.max_reconnects:
                    self._fail(WatchFailed(f"{target.cluster}: watching {target.kind}s failed {failures} times in a row; last: {exc}"))
                    return
                time.sleep(self.reconnect_delay)

    def _watch_once(self, target: Target, cursor: listwatch.Cursor) -> None:
        """One watch request from the cursor's resourceVersion, which moves as messages arrive."""
        try:
            resp = self._request(
                target,
                {"watch": "true", "resourceVersion": cursor.rv, "allowWatchBookmarks": "true", "timeoutSeconds": str(self.watch_timeout)},
                stream=True,
            )
        except kube.KubeError as exc:
            if exc.status == 410:
                raise listwatch.Gone(str(exc)) from exc
            raise
        self._responses.append(resp)
        try:
            buffer = b""
            for chunk in resp.stream(65536, decode_content=True):
                if self._stop.is_set():
                    return
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        observed = cursor.apply(json.loads(line))
                        if observed:
                            self._record(make_event(target.cluster, target.kind, observed[0], observed[1], Mark.now()))
        finally:
            self._responses.remove(resp)
            resp.release_conn()
            if self._stop.is_set():
                resp.close()
