"""Operator tools for the task-03 deployment (run as scripts, e.g. `python tools/verify.py`)."""
