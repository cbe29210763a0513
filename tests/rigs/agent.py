#!/usr/bin/env python3
"""The rig's stand-in for a Backend.AI agent: the one part of the rig that is not Backend.AI's.

It speaks the agent RPC the manager calls (callosum over ZeroMQ; msgpack bodies of the form
{"args": [...], "kwargs": {...}} packed by ai.backend.common.msgpack, as the real agent and
manager do), for every release the rigs run: 26.x adds `agent_id=` to every call and a
`metadata` field to the body, which are accepted and ignored as a single-agent host does.

There are no containers. Each kernel of `$RIG_ETC/agent.json` (written by seed.py) lists its
service ports, which point at real processes on 127.0.0.1 (OpenSSH, JupyterLab, the apps of
apps.py), and its home directory stands for the container's /home/work.

Fault switches for the tests (files of service names, one per line, in $RIG_RUN):
  fail-services     start_service answers {"status": "failed"}: the manager's 500;
  nocheck-services  start_service answers "started" without looking at the port, so that a
                    dead port reaches the manager's own connect (close 1013).
"""
from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import tarfile
import time
from pathlib import Path, PurePosixPath
from typing import Any

from callosum.lower.zeromq import ZeroMQAddress, ZeroMQRPCTransport
from callosum.ordering import ExitOrderedAsyncScheduler
from callosum.rpc import Peer

from ai.backend.common import msgpack

log = logging.getLogger("agent")

ETC = Path(os.environ["RIG_ETC"])
RUN = Path(os.environ["RIG_RUN"])
# How long start_service waits for a service's port to accept (the kernel runner waits 30 s).
START_TIMEOUT = float(os.environ.get("RIG_AGENT_START_TIMEOUT", "10"))
# download_single's limit in the real agent.
MAX_DOWNLOAD = 1 << 20
CONTAINER_HOME = PurePosixPath("/home/work")


def switched_on(switch: str, service: str) -> bool:
    path = RUN / switch
    return path.exists() and service in path.read_text().split()


class Agent:
    """The RPC functions, by the names the manager calls."""

    def __init__(self) -> None:
        self.kernels: dict[str, dict[str, Any]] = {}
        self.started: set[tuple[str, str]] = set()

    def kernel(self, kernel_id: Any) -> dict[str, Any]:
        kernel_id = str(kernel_id)
        if kernel_id not in self.kernels:
            # seed.py rewrites the file on every rig start.
            self.kernels = json.loads((ETC / "agent.json").read_text())["kernels"]
        if kernel_id not in self.kernels:
            raise RuntimeError(f"no such kernel on this agent: {kernel_id}")
        return self.kernels[kernel_id]

    def in_home(self, kernel_id: Any, filepath: str) -> Path:
        """The host path of /home/work/FILEPATH; nothing outside /home/work (as the real agent)."""
        home = Path(self.kernel(kernel_id)["home"]).resolve()
        target = (home / str(PurePosixPath(filepath))).resolve()
        if target != home and home not in target.parents:
            raise PermissionError("You cannot access files outside /home/work")
        return target

    # -- liveness and inventory --
    async def ping(self, msg: str, **_: Any) -> str:
        return msg

    async def health(self, *_: Any, **__: Any) -> dict[str, Any]:
        return {"status": "ok", "version": os.environ["BAI_VERSION"], "component": "agent",
                "connectivity": {"overall_healthy": True, "connectivity_checks": [],
                                 "timestamp": time.time()}}

    health_v2 = health

    async def gather_hwinfo(self, *_: Any, **__: Any) -> dict[str, Any]:
        return {}

    async def gather_hwinfo_v2(self, *_: Any, **__: Any) -> dict[str, Any]:
        return {"devices": []}

    async def scan_gpu_alloc_map(self, *_: Any, **__: Any) -> dict[str, Any]:
        return {}

    async def get_local_config(self, *_: Any, **__: Any) -> dict[str, Any]:
        return {"agent": {"abuse-report-path": ""}, "watcher": {}}

    async def update_scaling_group(self, *_: Any, **__: Any) -> None:
        return None

    async def sync_kernel_registry(self, *_: Any, **__: Any) -> None:
        return None

    async def ping_kernel(self, kernel_id: Any, **_: Any) -> dict[str, float]:
        self.kernel(kernel_id)
        return {"cpu_util": 0.0}

    async def check_running(self, kernel_id: Any, **_: Any) -> bool:
        # 26.x sweeps RUNNING kernels it has no heartbeat of; only False ends them.
        try:
            self.kernel(kernel_id)
        except RuntimeError:
            return False
        return True

    check_creating = check_running

    async def check_pulling(self, *_: Any, **__: Any) -> bool:
        return False

    # -- the service ports: what a tunnel's handshake asks for --
    async def start_service(self, kernel_id: Any, service: str, opts: dict, **_: Any) -> dict:
        kernel = self.kernel(kernel_id)
        port = next((p for p in kernel["service_ports"] if p["name"] == service), None)
        if port is None:
            return {"status": "failed", "error": "invalid service name"}
        if switched_on("fail-services", service):
            return {"status": "failed", "error": f"{service} failed to start (injected by the rig)"}
        if port["protocol"] == "preopen":
            # The user starts preopen apps themselves; the kernel runner never spawns them.
            return {"status": "started"}
        key = (str(kernel_id), service)
        status = "running" if key in self.started else "started"
        if switched_on("nocheck-services", service):
            self.started.add(key)
            return {"status": status}
        host_port = port["host_ports"][0]
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(kernel["host"], host_port), 2)
                writer.close()
                break
            except (OSError, asyncio.TimeoutError):
                if time.monotonic() > deadline:
                    return {"status": "failed", "error":
                            f"{service} does not accept on port {port['container_ports'][0]}"
                            f" within {START_TIMEOUT:.0f} s"}
                await asyncio.sleep(0.25)
        self.started.add(key)
        return {"status": status}

    async def shutdown_service(self, kernel_id: Any, service: str, **_: Any) -> None:
        self.started.discard((str(kernel_id), service))

    # -- files --
    async def download_single(self, kernel_id: Any, filepath: str, **_: Any) -> bytes:
        path = self.in_home(kernel_id, filepath)
        if not path.is_file():
            raise FileNotFoundError(f"No such file: {CONTAINER_HOME / filepath}")
        if path.stat().st_size > MAX_DOWNLOAD:
            raise ValueError("The file is too large to download at once")
        return path.read_bytes()

    async def download_file(self, kernel_id: Any, filepath: str, **_: Any) -> bytes:
        """A tar of the file, as the real agent returns Docker's archive."""
        path = self.in_home(kernel_id, filepath)
        if not path.exists():
            raise FileNotFoundError(f"No such file: {CONTAINER_HOME / filepath}")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(str(path), arcname=path.name)
        return buf.getvalue()

    async def upload_file(self, kernel_id: Any, filename: str, filedata: bytes, **_: Any) -> None:
        path = self.in_home(kernel_id, filename)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(filedata)

    async def list_files(self, kernel_id: Any, path: str, **_: Any) -> dict[str, Any]:
        base = self.in_home(kernel_id, path)
        entries = []
        for entry in sorted(base.iterdir()):
            st = entry.lstat()
            entries.append({"filename": entry.name, "size": st.st_size, "mode": oct(st.st_mode),
                            "ctime": st.st_ctime, "mtime": st.st_mtime, "atime": st.st_atime})
        return {"files": json.dumps(entries), "abspath": str(CONTAINER_HOME / path), "errors": ""}

    async def get_logs(self, kernel_id: Any, **_: Any) -> dict[str, str]:
        self.kernel(kernel_id)
        return {"logs": "(the rig's agent runs no containers)\n"}

    # -- what needs a container: refused, as a failing agent would --
    async def create_kernels(self, *_: Any, **__: Any) -> None:
        raise RuntimeError("this rig's agent cannot create containers")

    async def destroy_kernel(self, *_: Any, **__: Any) -> None:
        raise RuntimeError("this rig's agent cannot destroy containers (restart the rig)")

    async def execute(self, *_: Any, **__: Any) -> None:
        raise RuntimeError("this rig's agent cannot execute code")


RPC_FUNCTIONS = [
    "ping", "health", "health_v2", "gather_hwinfo", "gather_hwinfo_v2", "scan_gpu_alloc_map",
    "get_local_config", "update_scaling_group", "sync_kernel_registry", "ping_kernel",
    "check_running", "check_creating", "check_pulling", "start_service", "shutdown_service",
    "download_single", "download_file", "upload_file", "list_files", "get_logs",
    "create_kernels", "destroy_kernel", "execute",
]


def rpc_handler(agent: Agent, name: str):
    func = getattr(agent, name)

    async def handle(request: Any) -> Any:
        body = request.body or {}
        args, kwargs = body.get("args", []), body.get("kwargs", {})
        shown = [f"<{len(a)} bytes>" if isinstance(a, (bytes, bytearray)) else a for a in args]
        try:
            result = await func(*args, **kwargs)
        except Exception as e:
            log.warning("%s%s failed: %s: %s", name, tuple(shown), type(e).__name__, e)
            raise
        shown_result = f"<{len(result)} bytes>" if isinstance(result, bytes) else result
        log.info("%s%s -> %s", name, tuple(shown), shown_result)
        return result

    return handle


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    agent = Agent()
    peer = Peer(
        bind=ZeroMQAddress(f"tcp://{os.environ['HOST']}:{os.environ['AGENT_RPC_PORT']}"),
        transport=ZeroMQRPCTransport,
        scheduler=ExitOrderedAsyncScheduler(),
        serializer=msgpack.packb,
        deserializer=msgpack.unpackb,
    )
    for name in RPC_FUNCTIONS:
        peer.handle_function(name, rpc_handler(agent, name))
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with peer:
        log.info("agent RPC on port %s", os.environ["AGENT_RPC_PORT"])
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
