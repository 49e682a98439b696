"""One error type for problems the user can fix: the CLI prints its message and exits 2."""


class UserError(Exception):
    """Bad input, missing data or an unknown model/alias: a clear message, never a traceback."""
