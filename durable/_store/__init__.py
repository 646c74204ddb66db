"""Layer 2, store: Postgres through asyncpg (pool, LISTEN, migrations, the embedded
server, the named statements of ``durable/sql``), the rows it returns and the writes it
takes.

Imports the foundation.
"""
