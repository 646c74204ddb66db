"""Layer 3, runs: the verbs on stored runs that both workflow code and clients use (one
start path, signals, cancel, events, resource scoping) and the ``Runtime`` bundle of
store, settings, registry and telemetry they act through.

Imports the store and the foundation.
"""
