"""Metrics with the reference system's exact semantics (SPEC 5)."""
