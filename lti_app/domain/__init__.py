"""Pure rules: no Flask, SQLAlchemy or HTTP. Imported by services and views, never the reverse."""
