"""Benchmarks of durable against DBOS Transact (and pgqueuer as the executor reference).

Run with ``nox -s bench`` or ``uv run --group bench python -m bench``. Every scenario runs
both systems in the same run, on the same PostgreSQL server (each on its own fresh
database), alternating durable and DBOS rep by rep. Each system lives in its own agent
process (``bench.agent``), so neither's threads or memory touch the other's figures.

Layout: ``__main__`` (options, the table, the JSON), ``scenarios_*`` (what each scenario
measures and how), ``runs_durable`` / ``runs_dbos`` / ``runs_plain`` (each system's side),
``work_durable`` / ``work_dbos`` (the workflows), ``agents`` / ``agent`` (the processes).
"""
