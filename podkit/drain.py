"""The drain state of a pod: once set, /readyz answers 503 "draining" in every worker, so the Service stops
sending new connections here, while every other endpoint keeps serving until SIGTERM.

Set by the production overlay's preStop hook first thing, or by hand (README, "Production overlay"):

    kubectl -n task-03 exec <pod> -- python -m podkit.drain on|off|status
"""

import argparse
import json
import sys

from podkit import state

MARKER = "draining"


def reason():
    """Why the pod drains (what `on` was given), or None when it does not."""
    return state.read(MARKER)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m podkit.drain", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["on", "off", "status"])
    parser.add_argument("--reason", default="drained by hand", help="what /readyz says (with on)")
    args = parser.parse_args(argv)
    if args.action == "on":
        state.write(MARKER, args.reason)
    elif args.action == "off":
        state.remove(MARKER)
    why = reason()
    print(json.dumps({"status": "draining", "reason": why} if why is not None else {"status": "serving"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
