"""Incidents: the tables, their migrations, the store (SQLAlchemy) and its in-memory twin."""
