"""The readings database (SQLAlchemy 2.x models, sessions, migrations, queries)."""
