"""Alerts and reminders (issue #13): telling the right person, once, in the place they already look.

- ``detect``: schedule changes (a plan student's placements against the snapshot of the last run) and answered
  questions;
- ``reminders``: the daily deadline reminder of each case manager;
- ``delivery``: e-mail (one message per person per run, or a daily digest), preferences, one-click unsubscribe;
- ``inbox``: the in-tool inbox (list, unread count, mark read, open), with access checks per student;
- ``job``: one idempotent run of all of it (Celery beat, ``caseload alerts run``).

Layering: ``alerts`` uses ``casework`` (deadline rules) and ``access``; nothing in the other areas uses
``alerts`` (the teacher panel reads the snapshot model directly for its "new" marker).
"""
