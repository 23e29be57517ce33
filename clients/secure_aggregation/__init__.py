"""Client side of secure aggregation: the [secure_aggregation] schema (config.py) and the
ClientApp mods (mod.py): Flower's secaggplus_mod plus the simulated dropouts of a config."""
