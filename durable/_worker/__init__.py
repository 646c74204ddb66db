"""Layer 6, worker: executions of claimed runs, the poller, the scheduler's loop and the
queue choice, composed by ``Worker``.

Imports the client (a worker starts scheduled runs through it) and below.
"""
