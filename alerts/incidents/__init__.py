"""Incidents: the interfaces (ports), the tables and migrations, the database (engines, the leader
lock), the SQL store, and its in-memory twin."""
