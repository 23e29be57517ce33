"""The ServerApp: strategy, workflow, central evaluation on held-out persons, round records."""
