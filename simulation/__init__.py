"""What drives runs: the `ppml` command line (cli.py, commands/), experiment configs, engines,
results, sweeps, reports and benchmarks. The only package that may import all the others."""
