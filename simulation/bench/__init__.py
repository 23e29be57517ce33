"""Benchmarks of the project's speed and memory targets (`ppml bench ...`), one module each,
every comparison measured side by side in one run."""
