"""Scheduled retention sweeps: each shop, once a day at its quiet hour, culls what has expired.

- `claim`: one sweep per shop, day and mode, claimed through the database with a lease.
- `runner`: stream → holdings → plan (`sweep` mode) → steps of a ledger request, in batches, with
  progress checkpoints so a sweep that dies resumes without doing anything twice.
- `run`: `run_sweep` (now) and `queue_preview` (a dry run for the admin page, run by the clock).
- `parts`, `wiring`: what a sweep is given to work with (`SweepParts`), and the real ones.
- `groups`, `patterns`: carrier steps queued in groups; orders of one shape counted, not re-planned.
- `schedule`: the daily clock's job. `report`: counts, never personal data. `gallra sweep` is in
  `plugin/cli/sweep.py`.
"""
