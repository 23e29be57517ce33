"""The one codec between nested configs and Flower's flat run config ("training.lr" = 0.002, ...).

Flower passes run configs as flat scalar maps under every engine; `ppml run` writes them from the
validated experiment config and the apps rebuild and validate their sections from them with the
same pydantic models, so `flwr run .` gets the same checks. Sweeps and `--set` use the same dotted
keys, so they nest and flatten with the same two functions.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from datasets.errors import UserError, validation_lines

M = TypeVar("M", bound=BaseModel)

UNSET = ""  # Flower run configs hold no None: an empty string stands for "not set"

THREADS_KEY = "torch-threads"  # node_config: intra-op threads of the per-person updates (default 1)


def flatten(nested: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; values that are not dicts are kept as they are."""
    out: dict[str, Any] = {}
    for k, v in nested.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """{"a.b": 1} -> {"a": {"b": 1}}; a key used both as a value and as a section is an error."""
    out: dict[str, Any] = {}
    for key, v in flat.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"{key!r}: {part!r} is set both as a value and as a section")
        if isinstance(node.get(parts[-1]), dict):
            raise ValueError(f"{key!r} is set both as a value and as a section")
        node[parts[-1]] = v
    return out


def to_run_config(sections: dict[str, BaseModel]) -> dict[str, Any]:
    """Flat scalars for Flower: None becomes UNSET, lists become JSON text."""
    nested = {name: model.model_dump(mode="json") for name, model in sections.items()}
    return {k: (UNSET if v is None else json.dumps(v) if isinstance(v, list) else v)
            for k, v in flatten(nested).items()}


def _decoded(v: Any) -> Any:
    """UNSET back to None, JSON list text back to the list (to_run_config's inverse)."""
    if v == UNSET:
        return None
    if isinstance(v, str) and v.startswith("["):
        try:
            return json.loads(v)
        except json.JSONDecodeError:
            return v
    return v


def section_values(run_config: dict[str, Any], name: str) -> dict[str, Any]:
    """The keys of one section, nested, with UNSET back to None and lists decoded."""
    prefix = f"{name}."
    return nest({k[len(prefix):]: _decoded(v) for k, v in run_config.items() if k.startswith(prefix)})


def section(run_config: dict[str, Any], name: str, model: type[M]) -> M:
    try:
        return model.model_validate(section_values(run_config, name))
    except ValidationError as exc:
        raise UserError("\n".join(["invalid run config:", *validation_lines(exc, f"{name}.")])) from None
