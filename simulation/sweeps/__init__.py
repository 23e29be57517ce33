"""Sweeps: plan (grid x seeds -> points), executors (where points run), table (results.csv),
runner (`ppml sweep`), report (`ppml report`: Markdown and figures)."""
