"""Alembic environment: runs on the connection the store hands over (no alembic.ini needed)."""

from alembic import context

from sigverify.service.store import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through sigverify.service.store.migrate(engine)")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
