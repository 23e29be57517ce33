"""A sooner first retry for Flower message objects that have not arrived yet.

A SuperNode offers a task to its ClientApp as soon as the message is stored, before the message's
objects have come from the SuperLink, and it announces a reply to the SuperLink before uploading
the reply's objects. The first pull on either side therefore often finds an object missing, and
Flower's first retry waits 1 s (`PULL_INITIAL_BACKOFF`, bound as a default argument): that was
most of every deployment exchange (docs/deployment.md). Only the first wait changes; doubling,
cap, tries and jitter stay Flower's.
"""

from __future__ import annotations

import functools
import inspect
from types import ModuleType

OBJECT_RETRY_S = 0.02


def retry_objects_sooner(module: ModuleType, name: str) -> None:
    """Rebind Flower's object-pulling function `name`, as `module` imported it, with a first retry
    after OBJECT_RETRY_S; refuse if that function no longer takes `initial_backoff`."""
    fn = getattr(module, name)
    if isinstance(fn, functools.partial):  # already done in this process
        return
    if "initial_backoff" not in inspect.signature(fn).parameters:
        raise RuntimeError(f"{module.__name__}.{name} no longer takes initial_backoff; clients/object_retry.py "
                           "needs a look at this Flower version")
    setattr(module, name, functools.partial(fn, initial_backoff=OBJECT_RETRY_S))
