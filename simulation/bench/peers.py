"""`ppml bench peers`: the same federated experiment done the way Flower's own examples do it, side
by side with `ppml run`.

The peer follows Flower's examples/opacus: Flower's Simulation Engine (Ray), a NumPyClient that
wraps its model, optimizer and DataLoader with a new Opacus PrivacyEngine every round and reports
`get_epsilon` - the epsilon of that round alone. `ppml run` trains the same model on the same
partitions with the same noise multiplier, clipping norm, batch size and rounds on the local engine,
and reports the whole run's epsilon. The benchmark gives the wall-time ratio, the epsilon each
reports, and the whole-run epsilon of the peer's own mechanism (its rounds composed), i.e. by how
much its per-round figure understates. Ray needs a loopback-only network namespace here, so the peer
runs in `unshare -n` (root and util-linux needed; the benchmark says so if they are missing).
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NSOS = 8


def _peer_client_app(data_dir: str, sigma: float, clip: float, batch: int, delta: float):
    """Flower's examples/opacus client: a new PrivacyEngine every round, that round's epsilon reported."""
    import torch
    from flwr.client import ClientApp, NumPyClient
    from flwr.common import Context
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    from clients.model import ModelConfig, build_model, set_weights
    from clients.training import loss_fn
    from datasets.prepared import load_partition, read_index

    nsos = read_index(data_dir)["nsos"]
    mcfg = ModelConfig()

    class PeerClient(NumPyClient):
        def __init__(self, nso: str) -> None:
            self.part = load_partition(data_dir, nso)

        def fit(self, parameters, config):
            torch.set_num_threads(1)
            model = build_model(mcfg, 0, self.part.n_features, len(self.part.labels))
            set_weights(model, parameters)
            d = self.part.train
            loader = DataLoader(TensorDataset(torch.from_numpy(d.x), torch.from_numpy(d.y),
                                              torch.from_numpy(d.wellbeing)), batch_size=batch, shuffle=True)
            optimizer = torch.optim.Adam(model.parameters(), lr=0.002)
            engine = PrivacyEngine()  # a new one every round, as in Flower's example
            model, optimizer, loader = engine.make_private(module=model, optimizer=optimizer, data_loader=loader,
                                                           noise_multiplier=sigma, max_grad_norm=clip)
            model.train()
            for x, y, wb in loader:
                optimizer.zero_grad()
                loss_fn(model(x), y, wb, mcfg.wellbeing_weight, len(self.part.labels)).backward()
                optimizer.step()
            weights = [p.detach().numpy().copy() for p in model._module.state_dict().values()]
            return weights, len(d), {"epsilon": float(engine.get_epsilon(delta)),
                                     "sample_rate": float(engine.accountant.history[-1][1]),
                                     "steps": int(engine.accountant.history[-1][2])}

    def client_fn(context: Context):
        return PeerClient(nsos[int(context.node_config["partition-id"])]).to_client()

    return ClientApp(client_fn=client_fn), len(nsos)


def peer_run(data_dir: str, rounds: int, sigma: float, clip: float, batch: int, delta: float, out: str) -> None:
    """The peer, inside the network namespace: Flower's examples/opacus recipe on the Simulation Engine."""
    from flwr.common import Context, ndarrays_to_parameters
    from flwr.server import ServerApp, ServerAppComponents, ServerConfig
    from flwr.server.strategy import FedAvg
    from flwr.simulation import run_simulation

    from clients.model import ModelConfig, get_weights, model_for_index
    from datasets.prepared import read_index

    client_app, n = _peer_client_app(data_dir, sigma, clip, batch, delta)
    history: list = []

    def fit_metrics(results):
        history.append([dict(m) for _, m in results])
        return {}

    def server_fn(context: Context):
        init = ndarrays_to_parameters(get_weights(model_for_index(ModelConfig(), 0, read_index(data_dir))))
        strategy = FedAvg(fraction_evaluate=0.0, min_fit_clients=n, min_available_clients=n,
                          initial_parameters=init, fit_metrics_aggregation_fn=fit_metrics)
        return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=rounds))

    start = time.perf_counter()
    run_simulation(server_app=ServerApp(server_fn=server_fn), client_app=client_app, num_supernodes=n,
                   backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                                   "init_args": {"num_cpus": 2, "include_dashboard": False,
                                                 "_node_ip_address": "127.0.0.1", "logging_level": 30,
                                                 "log_to_driver": False}})
    Path(out).write_text(json.dumps({"wall_s": time.perf_counter() - start, "rounds": history}))


def _peer_in_namespace(args: list[str]) -> dict:
    if not (shutil.which("unshare") and shutil.which("ip")):
        from datasets.errors import UserError

        raise UserError("ppml bench peers runs Flower's Simulation Engine (Ray) in a loopback-only network namespace "
                        "and needs unshare and ip (util-linux, iproute2) and root")
    cmd = [sys.executable, "-m", "simulation.bench.peers", *args]
    proc = subprocess.run(["unshare", "-n", "-p", "-f", "--mount-proc", "bash", "-c",
                           "ip link set lo up && exec " + shlex.join(cmd)], capture_output=True, text=True)
    if proc.returncode != 0:
        from datasets.errors import UserError

        raise UserError(f"the peer run failed: {proc.stderr[-1500:]}")
    return json.loads(Path(args[-1]).read_text())


def bench_peers(rounds: int = 5, progress=print) -> dict:
    from clients.privacy.accounting import epsilon_of

    from ..config import load_config
    from ..experiment import run_experiment

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(None, [f"federation.rounds={rounds}", "privacy.enabled=true", "privacy.unit='record'",
                                 "privacy.target_epsilon=8.0", "training.local_epochs=1", "training.batch_size=256",
                                 f"output.dir='{tmp}'"])
        start = time.perf_counter()
        run_dir = run_experiment(cfg, Path(tmp) / "ours", quiet=True)
        ours_s = time.perf_counter() - start
        s = json.loads((run_dir / "summary.json").read_text())
        p = s["privacy"]
        sigma = next(iter(p["history"].values()))[0]["noise_multiplier"]
        manifest = json.loads((run_dir / "manifest.json").read_text())
        progress(f"  ppml run (local engine): {ours_s:.1f} s, whole-run epsilon {p['epsilon']:.2f} (sigma {sigma:.3f})")
        peer = _peer_in_namespace([manifest["data_dir"], str(rounds), str(sigma), str(p["max_grad_norm"]), "256",
                                   str(p["delta"]), str(Path(tmp) / "peer.json")])
    last = peer["rounds"][-1]
    reported = max(m["epsilon"] for m in last)
    whole = max(epsilon_of([(sigma, m["sample_rate"], m["steps"])] * rounds, p["delta"], "rdp") for m in last)
    progress(f"  Flower example recipe (Simulation Engine, PrivacyEngine per round): {peer['wall_s']:.1f} s, reports "
             f"epsilon {reported:.2f}; its whole run is {whole:.2f}")
    return {"benchmark": "peers", "rounds": rounds, "nsos": NSOS, "ours_s": round(ours_s, 2),
            "peer_s": round(peer["wall_s"], 2), "time_ratio_peer_to_ours": round(peer["wall_s"] / ours_s, 3),
            "ours_epsilon": p["epsilon"], "peer_reported_epsilon": reported, "peer_whole_run_epsilon": whole,
            "understatement": round(whole / reported, 3), "noise_multiplier": sigma, "delta": p["delta"]}


if __name__ == "__main__":
    data_dir, rounds, sigma, clip, batch, delta, out = sys.argv[1:8]
    peer_run(data_dir, int(rounds), float(sigma), float(clip), int(batch), float(delta), out)
