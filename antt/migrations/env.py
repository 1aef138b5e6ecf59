"""Alembic environment: the URL comes from antt.db, never from alembic.ini."""

from alembic import context
from sqlalchemy import pool

from antt.db import database_url, make_engine

config = context.config
url = config.attributes.get("url") or database_url(start=True)
connectable = config.attributes.get("connection")


def run(connection) -> None:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


if connectable is not None:
    run(connectable)
else:
    engine = make_engine(url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        run(conn)
        conn.commit()
