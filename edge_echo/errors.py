"""Errors a user can cause, each carrying the exit code the CLI returns."""


class EdgeEchoError(Exception):
    """A problem with the user's input or files: one line, exit code 2."""

    exit_code = 2


class UsageError(EdgeEchoError):
    """An option out of range or a bad combination of options."""


class ArtifactError(EdgeEchoError):
    """A file of an export is missing, altered, unreadable or inconsistent."""
