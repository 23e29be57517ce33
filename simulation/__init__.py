"""What drives runs: the `ppml` command line (cli.py, commands/), experiment configs, engines,
results, sweeps, reports and benchmarks. The only package that may import all the others.

Flower sends usage telemetry to its own server unless told not to (FLWR_TELEMETRY_ENABLED, read when
flwr is first imported): everything here talks to 127.0.0.1 only, so it is switched off before any
Flower module loads, for this process and every process it starts.
"""

import os

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
