"""testbed: the services as real gunicorn processes, and the real images as pods under an emulated kubelet.

Imported by tests/ and bench/; README.md beside this file says what it emulates and what it does not.
"""
