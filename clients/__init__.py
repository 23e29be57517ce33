"""The NSO side: the ClientApp, model and local training, DP-SGD with whole-run accounting
(privacy/), and the secure-aggregation schema and mods (secure_aggregation/). Imports datasets/ only."""
