#!/usr/bin/env python3
"""The rig session's small apps, on the kernel's host ports (sshd and JupyterLab are real ones
started by the rig itself):

  echo   tcp   $ECHO_PORT    every byte back, until the peer closes
  echo   tcp   $ECHO2_PORT   the same app's second container port: "port 2\\n", then echo
                             (so that a tunnel can tell which of the two `port=` reached)
  vnc    vnc   $VNC_PORT     an RFB server's greeting ("RFB 003.008\\n"), then echo
  ttyd   http  $TTYD_PORT    an HTTP app with a WebSocket, in place of ttyd:
                             GET / (a page), /health (JSON), /ws (echoes TEXT and BINARY),
                             /big?n=N (N bytes)
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal

from aiohttp import WSMsgType, web

log = logging.getLogger("apps")
HOST = os.environ["HOST"]


def echo_after(greeting: bytes):
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if greeting:
                writer.write(greeting)
            while data := await reader.read(1 << 16):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    return serve


async def page(_: web.Request) -> web.Response:
    return web.Response(content_type="text/html", text=(
        "<!doctype html><title>ttyd stand-in</title>"
        "<h1>rig-running: ttyd stand-in</h1><p>WebSocket echo at /ws</p>\n"))


async def health(_: web.Request) -> web.Response:
    return web.json_response({"ok": True, "app": "ttyd-standin"})


async def big(request: web.Request) -> web.Response:
    n = min(int(request.query.get("n", 1 << 20)), 256 << 20)
    return web.Response(body=b"x" * n, content_type="application/octet-stream")


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=16 << 20)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type == WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    servers = [
        await asyncio.start_server(echo_after(b""), HOST, int(os.environ["ECHO_PORT"])),
        await asyncio.start_server(echo_after(b"port 2\n"), HOST, int(os.environ["ECHO2_PORT"])),
        await asyncio.start_server(echo_after(b"RFB 003.008\n"), HOST, int(os.environ["VNC_PORT"])),
    ]
    app = web.Application()
    app.add_routes([web.get("/", page), web.get("/health", health), web.get("/big", big),
                    web.get("/ws", websocket)])
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, HOST, int(os.environ["TTYD_PORT"])).start()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    log.info("apps up")
    await stop.wait()
    for server in servers:
        server.close()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
