"""Engines, experiment configs, sweeps, reports and the `ppml` command line."""
