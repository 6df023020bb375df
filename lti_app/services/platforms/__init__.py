"""Platforms and trust: the LMSs Caseload is registered in, their deployments, and the keys on both sides.

- ``registry``: platforms and deployments (add, list, approve, disable);
- ``dynamic_registration``: LTI Dynamic Registration by one-time link;
- ``keys``: the tool's signing keys (JWKS, rotation); ``data_keys``: re-encrypting data at rest;
- ``launch``: what a validated launch records and where it sends the person;
- ``launch_state``: housekeeping of OIDC state and used nonces;
- ``canvas_config``: the Canvas developer-key JSON.
"""
