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
