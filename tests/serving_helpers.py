"""Servers for the service tests: `bertforge serve` as a subprocess, or the same application
under uvicorn in a thread of the test process (no second start-up of Python)."""

import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

SERVER_START_SECONDS = 300  # how long to wait for a server to come up before failing, not a test limit


class Server:
    """A `bertforge serve` subprocess; its output goes to ``log``, which is read for its address.
    ``descriptors`` sets its soft limit of open files (a server about to run out of them)."""

    def __init__(self, model: Path, log: Path, *options: str, descriptors: int | None = None):
        self.log = log

        def few_descriptors():
            _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (descriptors, hard))

        with open(log, "wb") as handle:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bertforge", "serve", "--model", str(model), "--port", "0", "--no-access-log",
                 *options], stdout=handle, stderr=subprocess.STDOUT,
                preexec_fn=few_descriptors if descriptors else None, env={**os.environ, "OMP_NUM_THREADS": "1"})
        self.url = self.port = None

    def wait_ready(self) -> str:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited with {self.process.returncode}: {self.log.read_text()}")
            found = re.search(r"serving \S+ on (http://\S+) ", self.log.read_text(errors="replace"))
            if found:
                try:
                    if httpx.get(found.group(1) + "/health", timeout=30).status_code == 200:
                        self.url = found.group(1)
                        self.port = int(self.url.rsplit(":", 1)[1])
                        return self.url
                except httpx.TransportError:
                    pass
            time.sleep(0.2)
        raise AssertionError(f"the server did not come up: {self.log.read_text()}")

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # what Ctrl+C sends: a graceful shutdown
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


class ThreadServer:
    """The application under uvicorn, with the server's guards, in a thread of this process."""

    def __init__(self, service):
        import uvicorn

        from bertforge.serving.app import bind_socket, create_app, server_config

        self.socket = bind_socket("127.0.0.1", 0)
        self.app_config = server_config(create_app(service), lifespan="on", access_log=False, log_level="warning")
        self.server = uvicorn.Server(self.app_config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)
        self.thread.start()
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> str:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the server thread did not start"
            time.sleep(0.05)
        return self.url

    def stop(self) -> int:
        self.server.should_exit = True
        self.thread.join(60)
        self.socket.close()
        return 1 if self.thread.is_alive() else 0
