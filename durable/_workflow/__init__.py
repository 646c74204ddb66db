"""Layer 4, workflow side: the decorators, the run context and its cursor keys, and each
durable call (steps, timers, signals, children, recorded values) as check, run, record.

Talks to the execution that runs it through ``context.ExecutionPort``; imports runs,
store and foundation.
"""
