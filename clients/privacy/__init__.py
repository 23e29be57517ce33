"""Differential privacy inside each NSO: config, sampling, per-unit clipping, DP-SGD, accounting.

One concept per module, as in Opacus: config.py ([privacy]), sampling.py (Poisson sampling of
records or persons), clipping.py (per-unit clipping of Linear stacks), dp_sgd.py (the training
loop), accounting.py (whole-run ledger at constant cost per round, and the one delta policy).
"""
