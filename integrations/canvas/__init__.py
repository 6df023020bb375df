"""Canvas REST API clients (no Flask, no database)."""
