"""Independent work in parallel worker processes, with their progress shown by the parent.

Each worker is a fresh interpreter started as `python -m edge_echo.workers` (TensorFlow is
never forked, and the caller's script is never imported again, as multiprocessing's spawn
would: a script without a `__main__` guard would export again inside every worker). A worker
ignores Ctrl-C: the parent alone decides to stop, kills the workers and lets the caller clean
up (an export's staging directory), so nothing is left half-written. A worker that dies (a
native crash) is one line naming the item it was working on, never a hang.

Tasks reach a worker pickled on its stdin; progress and results come back pickled on a pipe
of their own, so whatever a library prints cannot corrupt them.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import selectors
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence

from .errors import ArtifactError, check_interrupted, first_line

Progress = Callable[[str, str], None]
_results = None  # in a worker: the pipe to the parent


def cores() -> int:
    """The cores this process may run on (a container or taskset may allow fewer than exist)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def report(model: str, stage: str) -> None:
    """Progress from inside a worker, shown by the parent's reporter."""
    if _results is not None:
        _send(("progress", model, stage))


def _send(message) -> None:
    pickle.dump(message, _results)
    _results.flush()


class _Worker:
    def __init__(self):
        read, write = os.pipe()
        self.process = subprocess.Popen([sys.executable, "-m", "edge_echo.workers", str(write)],
                                        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                        pass_fds=(write,))
        os.close(write)
        self.results = os.fdopen(read, "rb")
        self.index: int | None = None

    def give(self, index: int, fn: Callable, item) -> None:
        self.index = index
        pickle.dump((fn.__module__, fn.__qualname__, item), self.process.stdin)
        self.process.stdin.flush()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.results):
            with contextlib.suppress(OSError):
                stream.close()


def run(fn: Callable, items: Sequence, jobs: int, progress: Progress,
        names: Sequence[str], first: Sequence[int] | None = None) -> list:
    """[fn(item) for item in items], up to jobs at a time in worker processes, in order.

    fn must be a module-level function and items picklable; names[k] says what item k is,
    for the line a dead worker gets; first, the order to start them in (the longest first,
    so no core idles at the end). The first failure stops the rest and is raised here.
    """
    results: list = [None] * len(items)
    queue = list(first) if first is not None else list(range(len(items)))
    pool = [_Worker() for _ in range(max(1, min(jobs, len(items))))]
    selector = selectors.DefaultSelector()
    try:
        for worker in pool:
            selector.register(worker.results, selectors.EVENT_READ, worker)
            if queue:
                k = queue.pop(0)
                worker.give(k, fn, items[k])
        running = len([w for w in pool if w.index is not None])
        while running:
            for key, _ in selector.select(timeout=0.2):
                worker = key.data
                try:
                    message = pickle.load(worker.results)
                except (EOFError, pickle.UnpicklingError):
                    code = worker.process.wait()
                    how = (f"was killed by {signal.Signals(-code).name}" if code < 0
                           else f"exited with code {code}")
                    raise ArtifactError(f"{names[worker.index]}: the worker process exporting it "
                                        f"{how} (a runtime crashed); run again with --jobs 1 to "
                                        "see where") from None
                if message[0] == "progress":
                    progress(*message[1:])
                    continue
                if message[0] == "error":
                    raise message[1]
                results[worker.index] = message[1]
                worker.index = None
                if queue:
                    k = queue.pop(0)
                    worker.give(k, fn, items[k])
                else:
                    running -= 1
            check_interrupted()
        return results
    finally:
        selector.close()
        for worker in pool:
            worker.stop()


def _serve(fd: int) -> None:
    """A worker: run each task from stdin, answer on fd, until stdin closes."""
    global _results
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _results = os.fdopen(fd, "wb")
    tasks = sys.stdin.buffer
    while True:
        try:
            module, name, item = pickle.load(tasks)
        except EOFError:
            return
        try:
            value = getattr(importlib.import_module(module), name)(item)
        except BaseException as exc:  # noqa: BLE001 - it travels to the parent, which raises it
            try:
                pickle.dumps(exc)
            except Exception:
                exc = RuntimeError(first_line(exc))
            _send(("error", exc))
            continue
        _send(("result", value))


if __name__ == "__main__":
    # Run as a script this file is __main__, a second copy of the module: the tasks report
    # through edge_echo.workers, so that is the one that serves.
    from edge_echo import workers

    workers._serve(int(sys.argv[1]))
