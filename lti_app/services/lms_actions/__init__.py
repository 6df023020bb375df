"""Accommodations applied in the LMS (issue #12): the LMS connection, the reconcile that applies plan rules to
every timed quiz of every course a plan student is enrolled in, the ledger and the verification report."""
