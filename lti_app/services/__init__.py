"""Use cases. Services open units of work and are the only code that commits."""
