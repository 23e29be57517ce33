"""The NSO ClientApp: the SecAgg+ and dropout mods around an NSOClient (clients/nso_client.py).

Kept light on purpose: under Flower's own deployment runtime every Flower message starts a ClientApp process,
and only training and evaluation messages reach the client; SecAgg+'s setup, share-keys and unmask
stages are answered by the mod, so importing torch and Opacus waits until a client is built.
"""

from __future__ import annotations

from flwr.app import Context
from flwr.client import ClientApp

from .secure_aggregation.mod import make_mods


def make_client_app(run_config: dict | None = None) -> ClientApp:
    """A ClientApp whose run config is `run_config` over Flower's (engines that cannot pass one)."""

    def client_fn(context: Context):
        from .nso_client import NSOClient

        return NSOClient(context, {**context.run_config, **(run_config or {})}).to_client()

    return ClientApp(client_fn=client_fn, mods=make_mods(run_config or {}))


app = make_client_app()
