"""The one list-then-watch protocol: the cursor's decisions (pure) and the asyncio driver
over a scripted fake API (410 relists, a dropped stream re-watches from the newest
resourceVersion, BOOKMARKs only move it, any other ERROR fails)."""
import asyncio

import pytest

from ansible_collections.fedbench.testbed.plugins.module_utils.kube import listwatch


def obj(name, rv):
    return {"metadata": {"name": name, "resourceVersion": rv}}


def test_the_cursor_moves_on_every_message_and_decides():
    c = listwatch.Cursor(what="pods")
    c.listed("10")
    assert c.apply({"type": "ADDED", "object": obj("a", "11")}) == ("ADDED", obj("a", "11")) and c.rv == "11"
    assert c.apply({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "15"}}}) is None and c.rv == "15"
    with pytest.raises(listwatch.Gone):
        c.apply({"type": "ERROR", "object": {"code": 410, "message": "too old"}})
    with pytest.raises(listwatch.WatchError, match="watch error on pods: forbidden"):
        c.apply({"type": "ERROR", "object": {"code": 403, "message": "forbidden"}})
    c.listed("20", relist=True)
    c.dropped()
    assert (c.rv, c.relists, c.rewatches) == ("20", 1, 1)


class FakeKube:
    """Scripted: each list returns the next (items, rv); each watch replays the next script
    (messages, then how it ends: None = the stream ends, or an exception)."""

    def __init__(self, lists, watches):
        self.lists, self.watches = list(lists), list(watches)
        self.watched_from: list[str] = []

    async def list(self, path, params=None):
        return self.lists.pop(0)

    async def watch(self, path, rv, params=None, timeout_seconds=300, on_open=None):
        self.watched_from.append(rv)
        if not self.watches:
            await asyncio.sleep(3600)  # the last watch blocks until cancelled
        messages, end = self.watches.pop(0)
        if on_open:
            on_open()
        for m in messages:
            yield m
        if end:
            raise end


def test_the_driver_relists_on_410_and_rewatches_from_the_newest_version():
    kube = FakeKube(
        lists=[([obj("a", "5")], "10"), ([obj("a", "5"), obj("b", "30")], "31")],
        watches=[
            ([{"type": "ADDED", "object": obj("b", "12")}, {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "14"}}}], None),
            ([{"type": "MODIFIED", "object": obj("b", "20")}, {"type": "ERROR", "object": {"code": 410}}], None),
        ],
    )
    seen, lists = [], []
    cursor = listwatch.Cursor()

    async def go():
        task = asyncio.create_task(listwatch.list_then_watch(
            kube, "/api/v1/pods", on_list=lambda items, relisted: lists.append((len(items), relisted)),
            on_event=lambda t, o: seen.append((t, o["metadata"]["name"])), cursor=cursor))
        while len(kube.watched_from) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(go())
    # listed at 10; the stream ended after a bookmark at 14, so the re-watch starts at 14, not 10;
    # the 410 relists (at 31) and the next watch starts there.
    assert kube.watched_from == ["10", "14", "31"]
    assert seen == [("ADDED", "b"), ("MODIFIED", "b")]
    assert lists == [(1, False), (2, True)]
    assert (cursor.relists, cursor.rewatches) == (1, 1)


def test_the_driver_fails_on_any_other_error():
    kube = FakeKube(lists=[([], "1")], watches=[([{"type": "ERROR", "object": {"code": 500, "message": "boom"}}], None)])
    with pytest.raises(listwatch.WatchError, match="boom"):
        asyncio.run(listwatch.list_then_watch(kube, "/x", on_list=lambda i, r: None, on_event=lambda t, o: None))
