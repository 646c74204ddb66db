"""Replay of exported histories without a database (``durable.testing.Replayer``).

At the worker's level: it drives workflow code through the same run context.
"""
