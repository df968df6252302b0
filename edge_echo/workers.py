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
import threading
import time
from collections.abc import Callable, Iterator, Sequence

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
    def __init__(self, env: dict[str, str] | None = None):
        read, write = os.pipe()
        self.process = subprocess.Popen([sys.executable, "-m", "edge_echo.workers", str(write)],
                                        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                        pass_fds=(write,),
                                        env=None if env is None else {**os.environ, **env})
        os.close(write)
        self.results = os.fdopen(read, "rb")
        self.index: int | None = None

    def give(self, index: int, fn: Callable, item) -> None:
        self.index = index
        pickle.dump((fn.__module__, fn.__qualname__, item), self.process.stdin)
        self.process.stdin.flush()

    def death(self) -> str:
        """How a worker whose pipe closed ended, in a few words."""
        code = self.process.wait()
        return f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"

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
                    raise ArtifactError(f"{names[worker.index]}: the worker process exporting it "
                                        f"{worker.death()} (a runtime crashed); run again with "
                                        "--jobs 1 to see where") from None
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


class Died:
    """What fresh() gives for an item whose worker died on every attempt."""

    def __init__(self, how: str):
        self.how = how


def fresh(fn: Callable, items: Sequence, jobs: int, progress: Progress | None = None,
          retries: int = 1, env: dict[str, str] | None = None) -> Iterator[tuple[int, object, int]]:
    """fn(item) for each item, each in a fresh worker process of its own, up to jobs at a time.

    Yields (index, value, attempts) as each finishes, in the order they finish. An item whose
    worker dies (killed, or a native crash) is run again in a new worker, up to retries times;
    after that its value is a Died saying how the last one ended. fn should return its own
    failures as values: an exception it raises is yielded as the value. Closing the generator
    (Ctrl-C included) kills the workers still running. env: variables set in each worker.
    """
    queue = list(range(len(items)))
    attempts = [0] * len(items)
    running: dict[int, _Worker] = {}
    selector = selectors.DefaultSelector()

    def start(k: int) -> None:
        worker = _Worker(env)
        attempts[k] += 1
        selector.register(worker.results, selectors.EVENT_READ, worker)
        worker.give(k, fn, items[k])
        running[k] = worker

    def finish(worker: _Worker) -> None:
        selector.unregister(worker.results)
        running.pop(worker.index, None)
        worker.stop()

    try:
        while queue or running:
            while queue and len(running) < max(1, jobs):
                start(queue.pop(0))
            for key, _ in selector.select(timeout=0.2):
                worker = key.data
                k = worker.index
                try:
                    message = pickle.load(worker.results)
                except (EOFError, pickle.UnpicklingError):
                    how = worker.death()
                    finish(worker)
                    if attempts[k] <= retries:
                        queue.insert(0, k)
                    else:
                        yield k, Died(how), attempts[k]
                    continue
                if message[0] == "progress":
                    if progress is not None:
                        progress(*message[1:])
                    continue
                finish(worker)
                yield k, message[1], attempts[k]
            check_interrupted()
    finally:
        selector.close()
        for worker in list(running.values()):
            worker.stop()


def _orphaned(parent: int) -> None:
    """Exit once the parent is gone (killed with SIGKILL, it cannot stop us): a worker must not
    convert on for nobody, holding a core."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


def _serve(fd: int) -> None:
    """A worker: run each task from stdin, answer on fd, until stdin closes."""
    global _results
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_orphaned, args=(os.getppid(),), daemon=True).start()
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
