"""Layer 1, foundation: values and rules with no I/O (codec, durations, cron, limits,
validation, the read-model types, the history format, telemetry and metrics).

Imports only ``durable.errors`` and third-party packages.
"""
