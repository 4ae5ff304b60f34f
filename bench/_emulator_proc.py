"""Serve the emulator (or the floor server) in this process until stdin closes; used by case 8.

Prints one JSON line ``{"endpoint": ..., "access_key": ..., "pid": ...}`` once it accepts requests. The
emulator runs on this process's main thread (``async with Emulator()``), so ``--profile FILE`` can write a
cProfile of the whole serving loop.

The floor is a bare aiohttp server answering the same route with a constant token: no signature check, no
JWT signing, no database — what aiohttp and the loopback cost on this machine under the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import json
import sys
from typing import Any

ACCESS_KEY = base64.b64encode(bytes(range(32))).decode("ascii")


async def serve_emulator(ready: Any) -> None:
    from acs_emulator import Emulator

    async with Emulator(access_key=ACCESS_KEY) as emulator:
        ready(emulator.endpoint)
        await wait_for_stdin_eof()


async def serve_floor(ready: Any) -> None:
    from aiohttp import web

    body = json.dumps({"token": "x" * 900, "expiresOn": "2030-01-01T00:00:00.000Z"}).encode()

    async def issue(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="application/json")

    async def create(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"identity": {"id": "8:acs:floor"}}, status=201)

    app = web.Application()
    app.router.add_post("/identities", create)
    app.router.add_post("/identities/{id}/:issueAccessToken", issue)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    ready(f"http://127.0.0.1:{port}")
    try:
        await wait_for_stdin_eof()
    finally:
        await runner.cleanup()


async def wait_for_stdin_eof() -> None:
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def main() -> int:
    import os

    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["emulator", "floor"])
    parser.add_argument("--profile", default="")
    args = parser.parse_args()

    def ready(endpoint: str) -> None:
        line = {"endpoint": endpoint, "access_key": ACCESS_KEY, "pid": os.getpid()}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()

    serve = serve_emulator if args.kind == "emulator" else serve_floor
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        asyncio.run(serve(ready))
        profiler.disable()
        profiler.dump_stats(args.profile)
    else:
        asyncio.run(serve(ready))
    return 0


if __name__ == "__main__":
    sys.exit(main())
