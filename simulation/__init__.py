"""What drives runs: the `ppml` command line (cli.py, commands/), experiment configs, engines,
results, sweeps, reports and benchmarks. The only package that may import all the others.

Flower sends usage telemetry to its own server unless told not to (FLWR_TELEMETRY_ENABLED, read when
flwr is first imported): everything here talks to 127.0.0.1 only, so it is switched off before any
Flower module loads, for this process and every process it starts.

protobuf is pinned to 6.30.2 (openmined-psi requires it, docs/coverage.md), which warns once per
Flower proto that Flower's generated code (5.29) is one major version older - a supported
combination; the warning is silenced here and in every process started from here.
"""

import os
import warnings

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
_GENCODE = "Protobuf gencode version"
warnings.filterwarnings("ignore", message=_GENCODE, category=UserWarning)
if _GENCODE not in os.environ.get("PYTHONWARNINGS", ""):
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"),
                                                          f"ignore:{_GENCODE}:UserWarning"]))
