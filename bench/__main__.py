"""`python -m bench`: run the benchmark (bench/run.py)."""

from .run import main

raise SystemExit(main())
