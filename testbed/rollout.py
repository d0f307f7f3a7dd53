"""`kubectl rollout restart` of a Deployment, as the Deployment controller carries it out (RollingUpdate),
and the rules any such rollout must keep, checked from what happened.

The restart stamps the pod template with `kubectl.kubernetes.io/restartedAt`, so the template has a new
pod-template-hash: a new ReplicaSet. The controller then, until the old pods are gone and `replicas` new
ones are available: creates new pods while the non-terminating pods number less than replicas + maxSurge,
and deletes old pods (unavailable ones first) while the available pods stay at least
replicas - maxUnavailable. Available: Ready for at least minReadySeconds, and not terminating. Old pods are
deleted as a ReplicaSet scales down (the kubelet's deletion: preStop, SIGTERM, grace period), in the
background.

The controller reads from each pod only `name`, `ready_since` (when it last became Ready, None while not
Ready), `deleting`, `gone` and `failure`, and acts through the cluster's `new_pod`, `start_in_background`
and the pod's `delete(wait=False)`; with the clock and the sleep injected, a unit test drives it on a fake
clock without podman (tests/testbed).

`broken_rules` checks a finished rollout against the Deployment's numbers from the pods' own record (their
"Ready" and "not Ready" events, `deleted_at`) and the controller's "created" events: the controller's
decisions are not trusted, only replayed against what the pods did.
"""

import copy
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .podspec import PodPlan

POLL = 0.1  # s between two looks at the pods (the controller reacts to watch events, within ms)


class Rollout:
    def __init__(self, cluster, deployment, clock=time.monotonic):
        self.cluster, self.deployment, self.clock = cluster, deployment, clock
        old_plan = cluster.plan(deployment)
        stamped = copy.deepcopy(cluster.manifests.get("Deployment", deployment))
        annotations = stamped["spec"]["template"]["metadata"].setdefault("annotations", {})
        annotations["kubectl.kubernetes.io/restartedAt"] = datetime.now(UTC).isoformat(timespec="seconds")
        self.plan = PodPlan(stamped, cluster.manifests)
        assert self.plan.template_hash != old_plan.template_hash
        self.old = cluster.live_pods(deployment)
        self.new = []
        self.events = []  # (clock time, "created" | "deleted" | "complete", the pod or None)
        self.started_at = self.finished_at = None

    def available(self, pod, now):
        """Ready for at least minReadySeconds at `now`, and not terminating."""
        since = pod.ready_since
        return (
            not pod.deleting
            and not pod.gone.is_set()
            and since is not None
            and now - since >= self.plan.min_ready
        )

    def run(self, timeout, sleep=time.sleep):
        """Roll the new template out; returns self once complete (`kubectl rollout status`)."""
        self.started_at = self.clock()
        self.cluster.plans[self.deployment] = self.plan
        deadline = self.started_at + timeout
        while not self.step():
            if self.clock() > deadline:
                described = "\n".join(p.describe() for p in self.old + self.new)
                raise TimeoutError(f"rollout of {self.deployment} not done after {timeout} s\n{described}")
            sleep(POLL)
        self.finished_at = self.clock()
        self._event("complete")
        return self

    def step(self):
        """One look at the pods, as one sync of the controller: create, then delete what the rules allow.
        True once the rollout is complete (no old pod left, `replicas` new ones available)."""
        now = self.clock()
        old = [p for p in self.old if not p.deleting]
        new = [p for p in self.new if not p.gone.is_set()]
        self._check_failures(new)
        if not old and len(new) >= self.plan.replicas and all(self.available(p, now) for p in new):
            return True
        while self.may_create(old, new):
            pod = self.cluster.start_in_background(self.cluster.new_pod(self.plan))
            self.new.append(pod)
            new.append(pod)
            self._event("created", pod)
        for pod in self.to_delete(old, new, now):
            pod.delete(wait=False)
            self._event("deleted", pod)
        return False

    def may_create(self, old, new):
        """maxSurge: another new pod while the non-terminating pods are fewer than replicas + maxSurge."""
        replicas = self.plan.replicas
        return len(new) < replicas and len(old) + len(new) < replicas + self.plan.max_surge

    def to_delete(self, old, new, now):
        """maxUnavailable: the old pods to delete now, unavailable ones first, while the available pods stay
        at least replicas - maxUnavailable."""
        available = {pod.name: self.available(pod, now) for pod in old + new}
        left = sum(available.values())
        chosen = []
        for pod in sorted(old, key=lambda p: available[p.name]):
            if available[pod.name]:
                if left - 1 < self.plan.replicas - self.plan.max_unavailable:
                    break
                left -= 1
            chosen.append(pod)
        return chosen

    def _check_failures(self, pods):
        for pod in pods:
            if pod.failure:
                raise RuntimeError(f"rollout of {self.deployment}: {pod.name} failed: {pod.failure}")

    def _event(self, what, pod=None):
        self.events.append((self.clock(), what, pod))


# ---- the rules, checked from what happened ----------------------------------------------------------------


@dataclass
class History:
    """One pod of a rollout as its record tells it: when it existed, was Ready, and began terminating."""

    name: str
    new: bool
    created: float  # -inf for an old pod: it was there before the rollout
    deleted: float  # inf while not deleted
    ready: list = field(default_factory=list)  # [(became Ready, stopped being Ready or inf)]

    def exists(self, t):
        """Created and not terminating at t."""
        return self.created <= t < self.deleted

    def available(self, t, min_ready):
        """Not terminating, and Ready for at least min_ready, at t."""
        return self.exists(t) and any(start + min_ready <= t < end for start, end in self.ready)

    def available_until(self, t, min_ready):
        """Ready for at least min_ready when t came (at a deletion: available up to it)."""
        return any(start + min_ready <= t <= end for start, end in self.ready)


def history(pod, new, created):
    """A pod's History from its events ("Ready", "not Ready") and `deleted_at`."""
    spans, start = [], None
    for at, message in pod.events:
        if message == "Ready" and start is None:
            start = at
        elif message == "not Ready" and start is not None:
            spans.append((start, at))
            start = None
    if start is not None:
        spans.append((start, math.inf))
    deleted = math.inf if pod.deleted_at is None else pod.deleted_at
    return History(pod.name, new, created, deleted, spans)


def broken_rules(rollout):
    """Every moment a finished rollout broke a rule of its Deployment, as [(rule, what happened)]; [] when
    it kept them all. The rules, between the rollout's start and its completion:

    - maxUnavailable: the available pods (Ready for minReadySeconds, not terminating) are never fewer than
      replicas - maxUnavailable;
    - maxSurge: the pods not terminating are never more than replicas + maxSurge;
    - minReadySeconds: the k-th available old pod is deleted only once k - maxUnavailable new pods have been
      Ready for minReadySeconds (an unavailable old pod may go at any time);
    - complete: at completion no old pod is left and `replicas` new pods are available.

    A rollout started before its old pods were available breaks maxUnavailable at its start: that is the
    caller's to avoid (wait for them, as `kubectl rollout status` does after an apply).
    """
    plan, start, end = rollout.plan, rollout.started_at, rollout.finished_at
    created = {pod.name: at for at, what, pod in rollout.events if what == "created"}
    pods = [history(pod, False, -math.inf) for pod in rollout.old]
    pods += [history(pod, True, created[pod.name]) for pod in rollout.new]
    least = plan.replicas - plan.max_unavailable
    most = plan.replicas + plan.max_surge
    changes = {start, end}
    for pod in pods:
        changes.update((pod.created, pod.deleted))
        changes.update(t for span in pod.ready for t in (span[0] + plan.min_ready, span[1]))
    broken = []
    for t in sorted(c for c in changes if start <= c <= end):
        available = [p.name for p in pods if p.available(t, plan.min_ready)]
        existing = [p.name for p in pods if p.exists(t)]
        if len(available) < least:
            broken.append(("maxUnavailable", f"+{t - start:.2f} s: {len(available)} available {available}"))
        if len(existing) > most:
            broken.append(("maxSurge", f"+{t - start:.2f} s: {len(existing)} not terminating {existing}"))
    deletions = sorted((p for p in pods if not p.new and p.deleted <= end), key=lambda p: p.deleted)
    available_deleted = 0
    for pod in deletions:
        t = pod.deleted
        if not pod.available_until(t, plan.min_ready):
            continue  # not available when deleted: the controller deletes those first, freely
        available_deleted += 1
        ready_new = [p.name for p in pods if p.new and p.available(t, plan.min_ready)]
        if len(ready_new) < available_deleted - plan.max_unavailable:
            broken.append(
                (
                    "minReadySeconds",
                    f"+{t - start:.2f} s: {pod.name} deleted, the available old pod number "
                    f"{available_deleted}, with {len(ready_new)} new pods Ready for {plan.min_ready:g} s",
                )
            )
    left = [p.name for p in pods if not p.new and p.exists(end)]
    done = [p.name for p in pods if p.new and p.available(end, plan.min_ready)]
    if left or len(done) < plan.replicas:
        broken.append(("complete", f"old pods left {left}, new pods available {done}"))
    return broken
