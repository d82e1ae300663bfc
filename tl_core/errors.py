"""One base class for everything a user can fix.

The app shows such an error as one line and keeps what was loaded; the CLI prints it and exits 2; a job that
fails with it records the message without a traceback. Anything else is a bug and keeps its traceback. So
"is this the user's to fix?" is one `isinstance(err, UserError)`, wherever it is asked.
"""


class UserError(ValueError):
    """Bad settings or input, said in words the user can act on. A ValueError, so older callers still catch it."""


class ConfigError(UserError):
    """Settings that cannot train: an unknown mode, a depth out of range, a text backbone on images."""
