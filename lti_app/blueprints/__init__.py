"""Thin views. Each module defines ``bp`` and ``init_app(app)``; rules live in services/ and domain/."""
