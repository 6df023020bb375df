"""Access and audit: who may see what, and the record that they did.

- ``policy``: the one access-policy entry point (decision + basis) every read of a student goes through;
- ``roles``: role checks (district administrator, case manager);
- ``grants``: role grants given by administrators;
- ``audit_log``: the access log and the administrators' change log.
"""
