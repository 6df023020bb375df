"""Casework: what case managers and teachers do with a student's record.

Plans and accommodations (``plans``), the teacher panel (``panel``), goals and progress (``goals``), deadlines
(``deadlines``), service minutes (``service_minutes``), contacts, meetings and referrals (``casework_log``), notes
(``notes``), questions to the case manager (``questions``), the caseload table (``caseload``), import, export and
retention; ``casework_access`` is the casework-side check on top of the access policy.
"""
