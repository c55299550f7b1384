"""Untrusted sched_ext schedulers: build and verify them inside a guest (see verify.py)."""
