"""Read a config section out of Flower's flat run config ("training.lr" = 0.001, ...).

Flower passes run configs as flat scalar maps under every engine; the apps rebuild and validate
their sections from it with the same pydantic models `ppml run` used, so `flwr run .` gets the
same checks.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from datasets.errors import UserError

M = TypeVar("M", bound=BaseModel)


UNSET = ""  # Flower run configs hold no None: an empty string stands for "not set"


def section_values(run_config: dict[str, Any], name: str) -> dict[str, Any]:
    prefix = f"{name}."
    return {k[len(prefix):]: (None if v == UNSET else v) for k, v in run_config.items() if k.startswith(prefix)}


def section(run_config: dict[str, Any], name: str, model: type[M]) -> M:
    values = section_values(run_config, name)
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        errs = "; ".join(f"{name}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise UserError(f"invalid run config: {errs}") from None


def flatten(name: str, model: BaseModel) -> dict[str, Any]:
    """Inverse of `section` for scalar fields (None becomes UNSET)."""
    return {f"{name}.{k}": (UNSET if v is None else v) for k, v in model.model_dump().items()}
