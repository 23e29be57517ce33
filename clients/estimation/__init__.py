"""NSO-side time-use estimation: the trained model turns each NSO's sensor-only persons into
published statistics (minutes per day per activity, by group), corrected for misclassification,
with person-bootstrap intervals and a person-level DP release (docs/time_use.md).

config (the [inference] section), quantify (classify-and-count, ACC/PACC, simplex projection),
cells (which person-days each released number sums), release (noise and its accounting),
estimate_steps (prediction, release blocks, correction, residuals), bootstrap (intervals),
national (one NSO's whole estimate and what it sends for pooling), pooling (the vector layout the
NSOs and the coordinator share).
"""
