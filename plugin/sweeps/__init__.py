"""Scheduled retention sweeps: each shop, once a day at its quiet hour, culls what has expired.

- `claim`: one sweep per shop, day and mode, claimed through the database with a lease.
- `runner`: stream → holdings → plan (`sweep` mode) → steps of a ledger request, in batches, with
  progress checkpoints so a sweep that dies resumes without doing anything twice.
- `run`: `run_sweep` (now) and `queue_preview` (a dry run for the admin page, run by the clock).
- `schedule`: the daily clock's job. `report`: counts, never personal data. `cli`: `gallra sweep`.
"""

from plugin.sweeps.run import queue_preview, run_sweep

__all__ = ["queue_preview", "run_sweep"]
