"""Roster sync: who is in which course and section, from every source.

- ``primitives``: the one upsert per kind that every source goes through (older observations change nothing);
- ``launch_roster``: what a validated launch writes (one statement per kind on PostgreSQL);
- ``webhooks``: verify, store and acknowledge Canvas Live Events and Moodle plugin events;
- ``inbox``: apply stored events, with backoff and parking;
- ``reconcile``: NRPS pulls (on launch, on a schedule, "Sync now") and the sync-health view;
- ``oneroster``: OneRoster 1.1/1.2 pulls;
- ``students``: linking LMS people to support records by SIS id.
"""
