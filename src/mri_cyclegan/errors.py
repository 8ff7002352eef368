"""User-facing errors: the CLI turns these into one line and exit code 2."""


class InputError(ValueError):
    """Bad user input (file, folder, option, checkpoint). The message says what, where and what to do."""


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or infinite; training stopped and the last good checkpoint was kept."""
