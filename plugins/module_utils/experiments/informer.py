# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An informer feeding a work queue, measuring how late it learns of changes.

Like client-go's shared informer with a rate-unlimited work queue: it lists
the churn's ConfigMaps (one cluster-wide request, by label), then watches
from the list's resourceVersion; a 410 relists, a dropped stream re-watches
from the newest resourceVersion seen. Each event's key goes into a work
queue that, like client-go's, holds a key at most once while it waits (a
second event for a waiting key is *coalesced*). One worker takes keys off
the queue and spends ``work_seconds`` on each.

Per event it records the **notification latency**: the wall-clock time the
event was read, minus the driver's send time carried in the object's
``fedbench.io/sent-at`` annotation (creates and updates; a delete carries no
new annotation, so deletes are counted but not timed). Both run on this
machine and read the same clock. Per key it records the **queue wait**:
dequeued - enqueued.

It stops when it sees the churn's sentinel ConfigMap, or after
``max_duration`` seconds.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from ansible_collections.fedbench.testbed.plugins.module_utils.kube import akube, listwatch
from ansible_collections.fedbench.testbed.plugins.module_utils.experiments import churn
from ansible_collections.fedbench.testbed.plugins.module_utils.measure import stats


class Informer:
    def __init__(self, kube: akube.AsyncKube, token: str, *, work_seconds: float = 0.0, max_duration: float = 600.0,
                 ready_file: str | None = None):
        self.kube = kube
        self.token = token
        self.work_seconds = work_seconds
        self.max_duration = max_duration
        self.ready_file = ready_file
        self.selector = f"{churn.LABEL}={token}"
        self.queue: asyncio.Queue = asyncio.Queue()
        self.waiting: dict[str, float] = {}
        self.notify: dict[str, list[float]] = {"ADDED": [], "MODIFIED": []}
        self.events: dict[str, int] = {"ADDED": 0, "MODIFIED": 0, "DELETED": 0}
        self.objects: dict[str, dict[str, int]] = {}
        self.queue_wait: list[float] = []
        self.coalesced = 0
        self.cursor = listwatch.Cursor(what="configmaps")
        self.processed = 0
        self.done = asyncio.Event()
        self.ready = asyncio.Event()
        self.initial = 0

    def _key(self, obj: dict) -> str:
        meta = obj.get("metadata") or {}
        return f"{meta.get('namespace')}/{meta.get('name')}"

    def _observe(self, kind: str, obj: dict, listed: bool = False) -> None:
        now = time.time()
        key = self._key(obj)
        name = (obj.get("metadata") or {}).get("name", "")
        if name.startswith(churn.SENTINEL_PREFIX):
            if kind != "DELETED":
                self.done.set()
            return
        record = self.objects.setdefault(key, {"ADDED": 0, "MODIFIED": 0, "DELETED": 0, "listed": 0})
        if listed:
            record["listed"] += 1
        else:
            record[kind] += 1
            self.events[kind] += 1
            sent = ((obj.get("metadata") or {}).get("annotations") or {}).get(churn.SENT_AT)
            if kind in self.notify and sent:
                self.notify[kind].append(now - float(sent))
        if key in self.waiting:
            self.coalesced += 1
        else:
            self.waiting[key] = asyncio.get_running_loop().time()
            self.queue.put_nowait(key)

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            key = await self.queue.get()
            self.queue_wait.append(loop.time() - self.waiting.pop(key))
            if self.work_seconds:
                await asyncio.sleep(self.work_seconds)
            self.processed += 1
            self.queue.task_done()

    def _mark_ready(self) -> None:
        if not self.ready.is_set():
            self.ready.set()
            if self.ready_file:
                Path(self.ready_file).write_text(f"{time.time():.6f}\n")

    def _listed(self, items: list[dict], relisted: bool) -> None:
        for item in items:
            self._observe("ADDED", item, listed=True)
        if not relisted:
            self.initial = len(self.objects)

    async def _watch_forever(self) -> None:
        await listwatch.list_then_watch(
            self.kube, "/api/v1/configmaps", params={"labelSelector": self.selector},
            on_list=self._listed, on_event=self._observe, on_open=self._mark_ready, cursor=self.cursor,
        )

    async def run(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        worker = asyncio.create_task(self._worker())
        watcher = asyncio.create_task(self._watch_forever())
        done_wait = asyncio.create_task(self.done.wait())
        finished, _ = await asyncio.wait({watcher, done_wait}, timeout=self.max_duration, return_when=asyncio.FIRST_COMPLETED)
        stopped_by = "sentinel" if done_wait in finished else ("error" if watcher in finished else "max_duration")
        error = None
        if watcher in finished and watcher.exception() is not None:
            error = f"{type(watcher.exception()).__name__}: {watcher.exception()}"
        watcher.cancel()
        done_wait.cancel()
        try:
            await asyncio.wait_for(self.queue.join(), timeout=30)
        except asyncio.TimeoutError:
            error = error or "work queue did not drain within 30 s"
        worker.cancel()
        await asyncio.gather(worker, watcher, done_wait, return_exceptions=True)
        return self.result(loop.time() - start, stopped_by, error)

    def result(self, elapsed: float, stopped_by: str, error: str | None) -> dict[str, Any]:
        seen = [k for k, r in self.objects.items() if r["ADDED"] or r["listed"]]
        return {
            "summary": {
                "elapsed": round(elapsed, 3),
                "stopped_by": stopped_by,
                "objects": len(self.objects),
                "objects_added": sum(1 for r in self.objects.values() if r["ADDED"]),
                "objects_deleted": sum(1 for r in self.objects.values() if r["DELETED"]),
                "objects_seen": len(seen),
                "initial": self.initial,
                "events": dict(self.events),
                "notify_latency": {kind: stats.summarize(values, 4) for kind, values in self.notify.items()},
                "queue_wait": stats.summarize(self.queue_wait, 5),
                "processed": self.processed,
                "coalesced": self.coalesced,
                "relists": self.cursor.relists,
                "rewatches": self.cursor.rewatches,
            },
            "error": error,
        }


async def run(kube: akube.AsyncKube, token: str, **kwargs: Any) -> dict[str, Any]:
    return await Informer(kube, token, **kwargs).run()
