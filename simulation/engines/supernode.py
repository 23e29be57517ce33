"""`flower-supernode` with a shorter idle wait.

After every exchange a SuperNode polls the SuperLink once more, finds nothing yet and sleeps a
hard-coded 3 s (`time.sleep(3)` in flwr/supernode/start_client_internal.py; no flag or variable
sets it, in Flower 1.41 and 1.42 alike). A SecAgg+ round is five exchanges, so 15 s of a round are
this wait (docs/deployment.md); it then waits for the ClientApp's reply in steps of 0.5 s. This
launcher runs Flower's own SuperNode entry point with only these polling sleeps shortened to `FLWR_SUPERNODE_IDLE_POLL_S` (default 0.1 s); everything else, retries and
back-offs included, is Flower's. If Flower's source no longer holds that exact call, it refuses to
start rather than run with a wait it does not know.

    python -m simulation.engines.supernode <flower-supernode arguments>
"""

from __future__ import annotations

import inspect
import os
import sys
import time as _time

IDLE_SLEEP_S = 3  # the constant in Flower's SuperNode loop
REPLY_POLL_S = 0.5  # its waits for a ClientApp's reply and for the reply's objects


class _ShortIdle:
    """The `time` module as Flower's SuperNode loop sees it, with the idle sleep shortened."""

    def __init__(self, poll_s: float) -> None:
        self.poll_s = poll_s

    def __getattr__(self, name: str):
        return getattr(_time, name)

    def sleep(self, seconds: float) -> None:
        _time.sleep(self.poll_s if seconds in (IDLE_SLEEP_S, REPLY_POLL_S) else seconds)


def patch(poll_s: float) -> None:
    """Shorten the SuperNode's idle wait in this process; refuse if Flower's loop changed."""
    import flwr.supernode.start_client_internal as loop

    source = inspect.getsource(loop)
    if source.count(f"time.sleep({IDLE_SLEEP_S})") != 1 or source.count(f"time.sleep({REPLY_POLL_S})") != 2:
        raise SystemExit("flwr.supernode.start_client_internal no longer polls as this launcher expects (3 s idle, "
                         "0.5 s for replies); "
                         "this Flower version needs its own check (simulation/engines/supernode.py)")
    loop.time = _ShortIdle(poll_s)


def poll_from_env(environ=os.environ) -> float:
    """FLWR_SUPERNODE_IDLE_POLL_S as seconds; a value that is not a positive number is refused."""
    raw = environ.get("FLWR_SUPERNODE_IDLE_POLL_S", "0.1")
    try:
        poll_s = float(raw)
    except ValueError:
        poll_s = float("nan")
    if not poll_s > 0:
        raise SystemExit(f"FLWR_SUPERNODE_IDLE_POLL_S = {raw!r}: must be a number of seconds above 0, e.g. 0.1")
    return poll_s


def main() -> None:
    patch(poll_from_env())
    from flwr.supercore.logger import update_console_handler
    from flwr.supernode.cli import flower_supernode

    update_console_handler(timestamps=True, colored=False)  # its log is a file: when, not colours

    sys.argv = ["flower-supernode", *sys.argv[1:]]
    flower_supernode()


if __name__ == "__main__":
    main()
