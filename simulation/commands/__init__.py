"""One module per `ppml` command; simulation/cli.py only parses the arguments and dispatches here."""
