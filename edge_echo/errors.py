"""Errors a user can cause, each carrying the exit code the CLI returns."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """A library's exception as one line: its first line, or its type when it says nothing.
    TensorFlow's errors from inside a traced function begin with a header ("in user code:")
    and the frames it ran through, and end with what went wrong: that last line is taken."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if lines[0].rstrip(":") == "in user code" and len(lines) > 1:
        return lines[-1][:limit]
    return lines[0][:limit]


class EdgeEchoError(Exception):
    """A problem with the user's input or files: one line, exit code 2."""

    exit_code = 2


class UsageError(EdgeEchoError):
    """An option out of range or a bad combination of options."""


class ArtifactError(EdgeEchoError):
    """A file of an export is missing, altered, unreadable or inconsistent."""


class HostUnavailable(ArtifactError):
    """A runtime's host (Node, headless Chromium) did not start here: a fact about this
    machine, not about the file; verify and bench say it and run the other runtimes."""


_interrupted = False


def remember_interrupts() -> None:
    """Make Ctrl-C stick: TensorFlow's tracing swallows the KeyboardInterrupt a SIGINT raises
    inside it (measured: the tf-keras SavedModel step of the micro conversion), so the signal is
    also recorded, and check_interrupted() raises it again at the next safe point."""
    import signal

    def handler(signum, frame):
        global _interrupted
        _interrupted = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)


def check_interrupted() -> None:
    if _interrupted:
        raise KeyboardInterrupt
