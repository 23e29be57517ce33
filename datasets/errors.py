"""User-facing errors of the data layer.

Every error a user can cause with a config or a data file derives from `UserError`, so the CLI can
print one clear message instead of a traceback.
"""


class UserError(Exception):
    """A problem with the user's input (config, data file, CLI argument): never a bug."""


class DataValidationError(UserError):
    """An external or generated table does not follow the documented format."""
