"""The endpoints both services share: /livez (liveness), /readyz (readiness) and /version.

Neither calls another service. Liveness that depends on a shared backend restarts every frontend when the
backend is down; readiness that does takes every frontend out of its Service at once, turning answers they
can still give into refused connections.
https://kubernetes.io/docs/concepts/configuration/liveness-readiness-startup-probes/
"""

from functools import cache

from django.conf import settings
from django.http import JsonResponse
from django.utils.module_loading import import_string
from django.views.decorators.http import require_safe

from podkit import fault
from podkit.conf import build_info, pod_name
from podkit.errors import probe_answer


@cache
def readiness_checks():
    """PODKIT_READINESS_CHECKS: dotted paths of callables returning None when ready, else why not."""
    return [import_string(dotted) for dotted in getattr(settings, "PODKIT_READINESS_CHECKS", ())]


@require_safe
def livez(request):
    """Liveness: answering at all is the proof; no I/O."""
    return probe_answer("alive")


@require_safe
def readyz(request):
    """Readiness: 503 while the pod drains or a check of this service fails; no call to another service."""
    why = fault.readiness_reason()
    if why is not None:
        return probe_answer(
            "draining", f"pod is draining ({why}); python -m podkit.fault off readiness undoes it"
        )
    for check in readiness_checks():
        error = check()
        if error:
            return probe_answer("unready", error)
    return probe_answer("ready")


@require_safe
def version(request):
    """Which build answers, and in which pod: {"version": ..., "git_commit": ..., "pod": ...}; the build is
    baked into the image at build time."""
    return JsonResponse({**build_info(), "pod": pod_name()})
