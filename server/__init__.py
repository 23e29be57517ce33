"""The coordinator: the ServerApp, its round workflow, strict strategies, the checked SecAgg+
workflow, central evaluation on held-out persons and the round records. Imports clients/ and datasets/."""
