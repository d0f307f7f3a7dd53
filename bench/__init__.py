"""The benchmark behind `./manage.sh bench`: both services under load, their ceiling, start, stop, memory.

Run it with `python -m bench` from the repository root (`--help` lists the options).
"""
