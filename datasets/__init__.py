"""Data: the window-table format and the simulator that writes it.

Format side (this folder): schema, dataset, io, validation, splits, features, prepared (encoded
per-NSO partitions), describe, facts (the published reference figures), atomic (safe writes),
errors. synthetic/: the simulator. This package imports nothing from clients/, server/ or
simulation/: data flows one way.
"""
