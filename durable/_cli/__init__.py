"""The command line's parts: argument types, output formats and the run, replay and
dashboard commands (``durable.cli`` wires them)."""
