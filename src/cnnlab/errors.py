"""The one error type users see: a clear line, exit code 2, no traceback (see ``cli.main``)."""


class CnnlabError(Exception):
    """A problem with the user's input (data, config, flags) that they can fix.

    The CLI prints ``cnnlab: error: <message>`` and exits with code 2; anything else is a bug
    and keeps its traceback.
    """

    exit_code = 2


class ConfigError(CnnlabError):
    """A config file or override that names an unknown key or has a value of the wrong type."""


class DataError(CnnlabError):
    """A dataset that is missing, laid out wrongly, truncated or unreadable."""


class DiskError(CnnlabError):
    """A folder that cannot be written: read-only, not permitted, or full."""


class CheckpointError(CnnlabError):
    """A checkpoint that is missing, truncated or corrupt, or that would need pickle to load."""


class TrainingDiverged(CnnlabError):
    """The loss became NaN or infinite; the run is recorded as diverged. Exit code 3.

    ``info`` holds what the run's summary records: ``diverged_epoch``, ``diverged_step``, ``diverged_lr``
    and, once the engine adds them, ``epochs`` (finished), ``best_epoch``, ``wall_time_s``, ``precision``.
    """

    exit_code = 3

    def __init__(self, message: str, info: dict | None = None):
        super().__init__(message)
        self.info = dict(info or {})
        self.run_dir = None  # set once the run folder has recorded the divergence


class TrainingInterrupted(CnnlabError):
    """Ctrl-C (SIGINT) during training; ``last.ckpt`` holds the last finished epoch. Exit code 130."""

    exit_code = 130
