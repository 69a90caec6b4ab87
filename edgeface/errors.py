"""One exception type for user mistakes: the CLI prints its message as one line, no traceback."""


class EdgefaceError(Exception):
    """A problem with the user's input (paths, labels, flags), reported as one clear line."""
