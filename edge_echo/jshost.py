"""The JavaScript runtimes' hosts: Node, and headless Chromium (runners/onnxruntime_node.py,
runners/onnxruntime_web.py, runners/litertjs.py).

Both run edge_echo/js/host.mjs, which opens a file in an engine (ONNX Runtime, LiteRT.js), runs
it and times its bare call. Node runs it as a child process spoken to over stdio (js/node.mjs);
Chromium loads it in a page (js/page.html) that a loopback HTTP server serves with the npm
packages, driven by Playwright. Every request the page makes is checked: one that would leave
the machine is refused and recorded (BrowserHost.escaped), so nothing is fetched from anywhere
but the installed packages.

The npm packages are pinned by package.json and package-lock.json at the project root and
installed by make (`npm ci --ignore-scripts`) into node_modules/ beside them, or wherever
EDGE_ECHO_NODE_MODULES points. One host of each kind serves a process, started on first use.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import functools
import json
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np

from . import browser
from .errors import ArtifactError, HostUnavailable, first_line

JS = Path(__file__).resolve().parent / "js"
ROOT = Path(__file__).resolve().parent.parent
INSTALL = "make js (npm ci --ignore-scripts at the project root)"
# Seconds a request may take before the host is taken for hung (and stopped).
TIMEOUT = 300.0


def modules() -> Path:
    return Path(os.environ.get("EDGE_ECHO_NODE_MODULES") or ROOT / "node_modules")


def package_version(name: str) -> str | None:
    try:
        return json.loads((modules() / name / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def node() -> str | None:
    return shutil.which("node")


def why(kind: str, packages: tuple[str, ...]) -> str | None:
    """Why a runtime of this host kind ("node" or "browser") and these npm packages cannot run
    here, in one line with the command that adds what is missing; None when it can."""
    if kind == "node" and node() is None:
        return "no Node here: install Debian's nodejs package (`apt-get install nodejs`)"
    missing = [p for p in packages if package_version(p) is None]
    if missing:
        return f"the npm package {', '.join(missing)} is not installed in {modules()}: run {INSTALL}"
    if kind == "browser":
        return browser.why()
    return None


PACKAGES = ("onnxruntime-node", "onnxruntime-web", "@litertjs/core")


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    return {p: v for p in packages if (v := package_version(p))}


@functools.cache
def _node_version(path: str) -> str | None:
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip().removeprefix("v") or None


def installed() -> dict[str, str]:
    """The versions of what the JavaScript runtimes run on here (verify's and bench's JSON):
    Node, and each npm package installed."""
    found = {"node": _node_version(node())} if node() else {}
    return {k: v for k, v in {**found, **versions()}.items() if v}


def encode(array: np.ndarray) -> dict:
    a = np.ascontiguousarray(array)
    return {"dtype": a.dtype.name, "shape": list(a.shape),
            "data": base64.b64encode(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()).decode()}


def decode(packed: dict) -> np.ndarray:
    dtype = np.dtype(packed["dtype"]).newbyteorder("<")
    data = np.frombuffer(base64.b64decode(packed["data"]), dtype=dtype)
    return data.astype(dtype.newbyteorder("="), copy=True).reshape(packed["shape"])


class Host:
    kind = "?"

    def alive(self) -> bool:
        return True

    def call(self, method: str, *params, timeout: float = TIMEOUT):
        raise NotImplementedError

    def close(self) -> None:
        pass


class NodeHost(Host):
    """node js/node.mjs NODE_MODULES: one JSON request a line on stdin, one answer on stdout."""

    kind = "node"

    def __init__(self):
        self.proc = subprocess.Popen(
            [node(), str(JS / "node.mjs"), str(modules())], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1, cwd=JS)
        self.next = 0
        self.lock = threading.Lock()
        ready = self._answer(60.0)
        if not ready.get("ready"):
            self.close()
            raise ArtifactError(f"onnxruntime-node did not load in Node: {ready.get('error')}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _answer(self, timeout: float) -> dict:
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                self.close()
                raise ArtifactError(f"Node did not answer within {timeout:.0f} s (stopped)")
            line = self.proc.stdout.readline()
            if not line:
                err = self.proc.stderr.read().strip().splitlines() if self.proc.stderr else []
                code = self.proc.wait()
                self.proc = None
                raise ArtifactError("Node exited (code {}){}".format(
                    code, f": {first_line(err[-1])}" if err else ""))
            if line.startswith("@ee "):
                return json.loads(line[4:])

    def call(self, method: str, *params, timeout: float = TIMEOUT):
        with self.lock:
            if self.proc is None:
                raise ArtifactError("Node is not running (it stopped on an earlier error)")
            self.next += 1
            self.proc.stdin.write(json.dumps({"id": self.next, "method": method,
                                              "params": list(params)}) + "\n")
            self.proc.stdin.flush()
            answer = self._answer(timeout)
        if "error" in answer:
            raise ArtifactError(answer["error"])
        return answer["result"]

    def close(self) -> None:
        proc, self.proc = getattr(self, "proc", None), None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()


class _Files(SimpleHTTPRequestHandler):
    """The page and the npm packages, read-only, with the headers that make the page
    cross-origin isolated (its clock then ticks in 5 µs, not 100 µs)."""

    roots: dict[str, Path] = {}

    def translate_path(self, path: str) -> str:
        path = unquote(urlsplit(path).path)
        for prefix, root in self.roots.items():
            if path.startswith(prefix):
                target = (root / path[len(prefix):]).resolve()
                if target == root or root in target.parents:
                    return str(target)
        return str(JS / "missing")

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args):
        pass


def serve(roots: dict[str, Path], port: int = 0) -> ThreadingHTTPServer:
    """A static server on 127.0.0.1 (port 0: a free one) for these URL prefixes, in a daemon
    thread. The longest prefix that matches a path serves it."""
    ordered = sorted(roots.items(), key=lambda kv: -len(kv[0]))
    handler = type("Files", (_Files,), {"roots": {k: Path(v).resolve() for k, v in ordered}})
    handler.extensions_map = {**_Files.extensions_map, ".mjs": "text/javascript",
                              ".js": "text/javascript", ".wasm": "application/wasm"}
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class BrowserHost(Host):
    """js/page.html in headless Chromium; the page's requests reach the loopback server only."""

    kind = "browser"

    def __init__(self):
        self.server = serve({"/ee/": JS, "/node_modules/": modules()})
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.escaped: list[str] = []
        self.pw = browser.playwright()
        # A switch Chromium ignores, on every process of this browser: what the watchdog kills.
        self.tag = f"--edge-echo-host={os.getpid()}-{id(self)}"
        self.stopped = False
        try:
            self.chromium = browser.launch(self.pw, (self.tag,))
            self.context = self.chromium.new_context()
            self.context.route("**/*", self._route)
            self.page = self.context.new_page()
            self.page.goto(f"{self.origin}/ee/page.html")
            self.page.wait_for_function("window.edgeEchoReady === true", timeout=30_000)
        except Exception as exc:
            self.close()
            raise ArtifactError(f"headless Chromium did not start the page ({first_line(exc)})") from None

    def alive(self) -> bool:
        return not self.stopped and not self.page.is_closed()

    def _route(self, route):
        url = route.request.url
        if url.startswith(self.origin + "/") or url.startswith("data:") or url.startswith("blob:"):
            route.continue_()
        else:
            self.escaped.append(url)
            route.abort()

    def _stop(self) -> None:
        """The watchdog: SIGKILL every process of this browser (a page busy in WebAssembly
        runs no timer of its own), so the blocked request returns with an error."""
        self.stopped = True
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and self.tag.encode() in (proc / "cmdline").read_bytes():
                    os.kill(int(proc.name), signal.SIGKILL)
            except OSError:
                pass

    def call(self, method: str, *params, timeout: float = TIMEOUT):
        if self.stopped:
            raise ArtifactError("headless Chromium was stopped after a request that hung")
        # One JSON string each way: Playwright checks a nested argument value by value, which
        # costs more than the run for a batch of sequences.
        script = "async ([m, p]) => JSON.stringify(await window.edgeEcho(m, JSON.parse(p)))"
        watchdog = threading.Timer(timeout, self._stop)
        watchdog.start()
        try:
            return json.loads(self.page.evaluate(script, [method, json.dumps(list(params))]))
        except Exception as exc:
            if self.stopped:
                raise ArtifactError(f"no answer within {timeout:g} s: headless Chromium was "
                                    "stopped") from None
            text = first_line(exc).removeprefix("Error: ").strip()
            text = text.split("Error: ", 1)[-1] if "Error: " in text else text
            raise ArtifactError(text) from None
        finally:
            watchdog.cancel()

    def close(self) -> None:
        for step in (lambda: self.chromium.close(), lambda: self.server.shutdown()):
            with contextlib.suppress(Exception):  # closing what may never have opened
                step()


_HOSTS: dict[str, Host] = {}
_FAILED: dict[str, str] = {}


def host(kind: str) -> Host:
    """This process's host of a kind, started on first use; a host that failed to start says
    why again without another try."""
    if kind in _FAILED:
        raise HostUnavailable(_FAILED[kind])
    if kind in _HOSTS and not _HOSTS[kind].alive():  # stopped after a request that hung
        _HOSTS.pop(kind).close()
    if kind not in _HOSTS:
        try:
            _HOSTS[kind] = NodeHost() if kind == "node" else BrowserHost()
        except ArtifactError as exc:
            _FAILED[kind] = str(exc)
            raise HostUnavailable(str(exc)) from None
    return _HOSTS[kind]


@atexit.register
def close_all() -> None:
    while _HOSTS:
        _HOSTS.popitem()[1].close()
    _FAILED.clear()
