"""Every write to the domain goes through a function in this package (see docs/architecture.md).

- ``jobs``: jobs, their stages, milestones, owner and status.
"""
