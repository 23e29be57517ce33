"""User-facing errors of the whole project, and the one way validation errors are worded.

Every error a user can cause with a config, a data file, a CLI argument or a misbehaving peer
derives from `UserError`, so the CLI prints one clear message instead of a traceback. It lives in
datasets/ because that is the one package every other imports.
"""

from __future__ import annotations

from pydantic import ValidationError


class UserError(Exception):
    """A problem with the user's input (config, data file, CLI argument): never a bug."""


class DataValidationError(UserError):
    """An external or generated table does not follow the documented format."""


def validation_lines(exc: ValidationError, prefix: str = "", doc: str = "docs/config.md") -> list[str]:
    """One line per pydantic error: the dotted key, what is wrong and the value given."""
    lines = []
    for err in exc.errors():
        key = prefix + (".".join(str(p) for p in err["loc"]) or "(top level)")
        value = err.get("input")
        if err["type"] == "extra_forbidden":
            lines.append(f"  - unknown key '{key}' (value {value!r}); check the spelling against {doc}")
            continue
        msg = err["msg"].removeprefix("Value error, ")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        lines.append(f"  - {key}: {msg}{shown}")
    return lines
