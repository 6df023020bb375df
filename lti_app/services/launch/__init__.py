"""The launch flow: what a validated LTI launch records (``flow``), its roster writes in one statement per kind
(``roster_writes``), and the housekeeping of OIDC state and used nonces (``state``). It sits above the other areas:
it uses platforms, roster and access, and none of them uses it."""
