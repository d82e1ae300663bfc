"""One base class for everything a user can fix.

The app shows such an error as one line and keeps what was loaded; the CLI prints it and exits 2; a job that
fails with it records the message without a traceback. Anything else is a bug and keeps its traceback. So
"is this the user's to fix?" is one `isinstance(err, UserError)`, wherever it is asked.
"""


class UserError(ValueError):
    """Bad settings or input, said in words the user can act on. A ValueError, so older callers still catch it."""


class ConfigError(UserError):
    """Settings that cannot train: an unknown mode, a depth out of range, a text backbone on images."""


class RunnerError(UserError):
    """A run that could not finish for a reason outside the engine (its worker process died, its Ray node was
    lost): one line for the page, the CLI and the run store, and the server goes on serving."""


MEMORY_ADVICE = "try a smaller batch size or image size (or fewer labels per class)"


def out_of_memory(err: BaseException) -> bool:
    """CPU and GPU allocators say it differently: MemoryError, torch.OutOfMemoryError, "can't allocate memory"."""
    text = str(err).lower()
    return (isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError"
            or "can't allocate memory" in text or "out of memory" in text)


def failure_text(err: BaseException) -> str:
    """One line that says what went wrong: the user's own words for a UserError, advice for running out of
    memory, the exception's type and text for a bug (whose traceback goes to the log)."""
    if isinstance(err, UserError):
        return str(err)
    if out_of_memory(err):
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return f"Out of memory: the run needs more memory than this machine has ({first[:160]}); {MEMORY_ADVICE}."
    return f"{type(err).__name__}: {err}"
