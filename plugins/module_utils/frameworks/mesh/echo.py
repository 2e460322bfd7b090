# -*- coding: utf-8 -*-
# Copyright: fedbench contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The echo server: answers every request with its cluster, its instance and
a timestamp, as JSON. It serves at most ``--max-inflight`` requests at once
and answers 503 to the rest, as a pod with one worker does under a burst.

    python -m ...echo --cluster c1 --instance echo-0 --address 127.0.1.1 --port 8080

Run by the ``echo_server`` role as a managed process on a 127.0.0.0/8
address of its own (one per instance), so each instance is a distinct
endpoint to the gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import time
from datetime import datetime, timezone


def make_app(cluster: str, instance: str, max_inflight: int, work_ms: float, stats_file: str = ""):
    from aiohttp import web

    state = {"inflight": 0, "served": 0, "refused": 0, "server_seconds": 0.0}

    async def echo(request: web.Request) -> web.Response:
        if state["inflight"] >= max_inflight:
            state["refused"] += 1
            return web.json_response({"cluster": cluster, "instance": instance, "error": "busy"}, status=503)
        state["inflight"] += 1
        start = time.monotonic()
        try:
            if work_ms:
                await asyncio.sleep(work_ms / 1000.0)
            state["served"] += 1
            state["server_seconds"] += time.monotonic() - start
            return web.json_response({
                "cluster": cluster,
                "instance": instance,
                "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "server_ms": round((time.monotonic() - start) * 1000, 3),
                "path": request.path,
            })
        finally:
            state["inflight"] -= 1

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def stats(_: web.Request) -> web.Response:
        return web.Response(text=json.dumps(state), content_type="application/json")

    async def save_stats(_: web.Application) -> None:
        if stats_file:
            with open(stats_file, "w") as handle:
                json.dump({"cluster": cluster, "instance": instance, **state}, handle)

    app = web.Application()
    app.on_shutdown.append(save_stats)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/stats", stats)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="fedbench echo server")
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--instance", required=True)
    parser.add_argument("--address", default="127.0.0.1",
                        help="a 127.0.0.0/8 address, or 'pod': the pod's own address (POD_IP), inside a pod's network namespace")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-inflight", type=int, default=1)
    parser.add_argument("--work-ms", type=float, default=20.0, help="time each request takes")
    parser.add_argument("--stats-file", default="", help="where to write the counters on shutdown")
    args = parser.parse_args(argv)
    if args.address == "pod":
        # In a pod, Istio's sidecar forwards inbound requests to the pod's own
        # address, never to 127.0.0.1; the address is the pod's network
        # namespace's, reachable only through the pod network.
        args.address = os.environ.get("POD_IP", "")
        if not args.address:
            parser.error("--address pod needs POD_IP (the pod's status.podIP, through the downward API)")
    elif not args.address.startswith("127."):
        parser.error(f"--address must be on 127.0.0.0/8 (or 'pod'), got {args.address}")
    from aiohttp import web

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.address, args.port))
    web.run_app(make_app(args.cluster, args.instance, args.max_inflight, args.work_ms, args.stats_file), sock=sock, print=None, access_log=None)


if __name__ == "__main__":
    main()
