"""`kubectl rollout restart` of a Deployment, as the Deployment controller carries it out (RollingUpdate).

The restart stamps the pod template with `kubectl.kubernetes.io/restartedAt`, so the template has a new
pod-template-hash: a new ReplicaSet. The controller then, until the old pods are gone and `replicas` new
ones are available: creates new pods while the non-terminating pods number less than replicas + maxSurge,
and deletes old pods (unavailable ones first) while the available pods stay at least
replicas - maxUnavailable. Available: Ready for at least minReadySeconds, and not terminating. Old pods are
deleted as a ReplicaSet scales down (the kubelet's deletion: preStop, SIGTERM, grace period), in the
background.
"""

import copy
import time
from datetime import UTC, datetime

from .podspec import PodPlan

POLL = 0.1  # s between two looks at the pods (the controller reacts to watch events, within ms)


class Rollout:
    def __init__(self, cluster, deployment):
        self.cluster, self.deployment = cluster, deployment
        old_plan = cluster.plan(deployment)
        stamped = copy.deepcopy(cluster.manifests.get("Deployment", deployment))
        annotations = stamped["spec"]["template"]["metadata"].setdefault("annotations", {})
        annotations["kubectl.kubernetes.io/restartedAt"] = datetime.now(UTC).isoformat(timespec="seconds")
        self.plan = PodPlan(stamped, cluster.manifests)
        assert self.plan.template_hash != old_plan.template_hash
        self.old = cluster.live_pods(deployment)
        self.new = []
        self.events = []  # (time.monotonic(), what happened)
        self.started_at = self.finished_at = None

    def available(self, pod):
        since = pod.ready_since
        return (
            not pod.deleting
            and not pod.gone.is_set()
            and since is not None
            and time.monotonic() - since >= self.plan.min_ready
        )

    def run(self, timeout):
        self.started_at = time.monotonic()
        self.cluster.plans[self.deployment] = self.plan
        replicas = self.plan.replicas
        deadline = self.started_at + timeout
        while True:
            old = [p for p in self.old if not p.deleting]
            new = [p for p in self.new if not p.gone.is_set()]
            self._check_failures(new)
            if not old and len(new) >= replicas and all(self.available(p) for p in new):
                break
            if len(new) < replicas and len(old) + len(new) < replicas + self.plan.max_surge:
                pod = self.cluster.start_in_background(self.cluster.new_pod(self.plan))
                self.new.append(pod)
                self._event(f"created {pod.name}")
                continue
            available = sum(self.available(p) for p in old + new)
            for pod in sorted(old, key=self.available):  # unavailable ones first
                if self.available(pod):
                    if available - 1 < replicas - self.plan.max_unavailable:
                        break
                    available -= 1
                pod.delete(wait=False)
                self._event(f"deleted {pod.name}")
            if time.monotonic() > deadline:
                described = "\n".join(p.describe() for p in self.old + self.new)
                raise TimeoutError(f"rollout of {self.deployment} not done after {timeout} s\n{described}")
            time.sleep(POLL)
        self.finished_at = time.monotonic()
        self._event("complete")
        return self

    def _check_failures(self, pods):
        for pod in pods:
            if pod.failure:
                raise RuntimeError(f"rollout of {self.deployment}: {pod.name} failed: {pod.failure}")

    def _event(self, what):
        self.events.append((time.monotonic(), what))
