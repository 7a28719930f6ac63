"""The project's exception hierarchy.

Every error a user can cause derives from :class:`DdlsimError`; the CLI prints its
message on one line and exits with status 1. Anything else is a bug and shows a traceback.
"""


class DdlsimError(Exception):
    """Base class for expected, user-facing errors."""


class ConfigError(DdlsimError, ValueError):
    """Bad input: names the field, the rule and the offending value."""


class BackendUnavailableError(DdlsimError, RuntimeError):
    """A requested compute backend (e.g. ``--device gpu``) cannot be used here."""


class SimulationError(DdlsimError, RuntimeError):
    """A simulation cannot proceed (e.g. an event budget was exceeded)."""
