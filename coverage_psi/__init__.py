"""The second use case: an NSO measures how well a third party's data source covers its population,
by private set intersection, when neither side may see the other's list (docs/coverage.md).

config ([coverage]), keys (normalised composite keys, checks), psi (openmined-psi, ECDH PSI with a
cardinality-only mode), wire (framed messages over TCP with optional TLS, byte counts, transcripts),
estimate (coverage, match-rate correction, intervals, DP), third_party and nso (the two processes),
run (both processes for simulations and sweeps). Simulated registers: datasets/synthetic/registers.py.
"""
