"""One exception type for everything the user can fix, so the CLIs can print it as one line
and exit 2 instead of showing a traceback."""


class UserError(Exception):
    """Bad input: a file, key or value the user gave, and what is allowed instead.

    The message is shown as a single line; keep it self-contained (name the file, the key
    and the allowed values) and say what to do next where that is not obvious.
    """

    exit_code = 2


class PluginError(UserError):
    """A plugin set-up problem the user has to resolve (duplicate names, missing plugin)."""
