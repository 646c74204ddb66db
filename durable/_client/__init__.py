"""Layer 5, client: ``Client`` and what it offers (start, signal, cancel, handles, reads,
management, schedules and queue configuration).

Imports the workflow side (for workflow definitions and in-workflow handle calls) and below.
"""
