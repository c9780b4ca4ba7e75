"""Alembic environment: migrate the database named in the configuration (online only)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from alerts.incidents.migrations import adopt_old_heads
from alerts.incidents.tables import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url is not None, "alembic_config() sets sqlalchemy.url"
connectable = create_engine(url, poolclass=pool.NullPool)
with connectable.connect() as connection:
    with connection.begin():
        adopt_old_heads(connection)
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
connectable.dispose()
