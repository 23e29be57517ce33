"""Results of runs: the run directory, its manifest, reading metrics.jsonl, and summary.json."""
