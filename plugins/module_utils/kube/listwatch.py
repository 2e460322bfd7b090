# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""List, then watch from that resourceVersion: the one protocol every watcher here follows.

- a :class:`Cursor` holds the protocol's state and decisions, with no I/O:
  the newest resourceVersion seen (a dropped stream re-watches from it, not
  from where the stream started), BOOKMARKs that only move it, an expired
  resourceVersion (410 Gone) that means list again, any other ERROR event
  that means fail;
- :func:`list_then_watch` drives it over the asyncio client (the informer,
  the density watcher);
- the lifecycle's threaded :class:`watch.Recorder` drives the same cursor
  over the synchronous client.

Callers put one deadline around the whole wait (the recorder's
``wait_until``, the informer's ``max_duration``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping


class Gone(Exception):
    """The watch's resourceVersion is too old (HTTP 410): list again."""


class WatchError(Exception):
    """The server answered the watch with an error other than 410: fail."""


@dataclass
class Cursor:
    """The state of one list-then-watch, and its decisions (pure)."""

    what: str = "objects"
    rv: str = ""
    relists: int = 0
    rewatches: int = 0

    def listed(self, resource_version: str, *, relist: bool = False) -> None:
        self.rv = resource_version
        if relist:
            self.relists += 1

    def apply(self, message: Mapping[str, Any]) -> tuple[str, dict] | None:
        """One watch message: the (type, object) to observe, or None for a BOOKMARK.

        Raises :class:`Gone` on a 410 and :class:`WatchError` on any other ERROR.
        """
        etype, obj = message.get("type"), message.get("object") or {}
        if etype == "ERROR":
            if int(obj.get("code") or 0) == 410:
                raise Gone(obj.get("message", "resourceVersion too old"))
            raise WatchError(f"watch error on {self.what}: {obj.get('message', obj)}")
        self.rv = (obj.get("metadata") or {}).get("resourceVersion") or self.rv
        if etype == "BOOKMARK":
            return None
        return etype, obj

    def dropped(self) -> None:
        """The stream ended (a server timeout, a dropped connection): watch again from ``rv``."""
        self.rewatches += 1


async def list_then_watch(
    kube: Any,
    path: str,
    *,
    params: Mapping[str, str] | None = None,
    on_list: Callable[[list[dict], bool], None],
    on_event: Callable[[str, dict], None],
    on_open: Callable[[], None] | None = None,
    cursor: Cursor | None = None,
    timeout_seconds: int = 300,
) -> None:
    """List ``path`` then watch it until cancelled: ``on_list(items, relisted)`` after each
    list, ``on_event(type, object)`` per event (BOOKMARKs only move the cursor).

    ``kube`` is an :class:`akube.AsyncKube`; runs until its task is cancelled or an
    error other than 410 ends it.
    """
    cursor = cursor or Cursor(what=path)

    async def _list(relist: bool) -> None:
        items, rv = await kube.list(path, params)
        cursor.listed(rv, relist=relist)
        on_list(items, relist)

    await _list(False)
    while True:
        try:
            async for message in kube.watch(path, cursor.rv, params, timeout_seconds=timeout_seconds, on_open=on_open):
                observed = cursor.apply(message)
                if observed:
                    on_event(*observed)
            cursor.dropped()
        except Gone:
            await _list(True)

