"""The rollout controller (testbed/rollout.py) on a fake clock: the rules it keeps, and the rule checker
catching a controller that breaks each one (a mutation per rule). No podman: fake pods that become Ready
`startup` seconds after they are created and are gone `stop` seconds after their deletion."""

import copy
import heapq
import itertools
import threading

import pytest

from testbed.podspec import Manifests
from testbed.rollout import POLL, Rollout, broken_rules

STARTUP = 2.0  # s from a pod's creation to Ready
STOP = 6.0  # s from a deletion to the pod gone (preStop sleep 5, then SIGTERM)


def deployment(replicas, min_ready=0, strategy=None):
    template = {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"automountServiceAccountToken": False, "containers": [{"name": "web", "image": "web:1"}]},
    }
    spec = {"replicas": replicas, "minReadySeconds": min_ready, "template": template}
    if strategy is not None:
        spec["strategy"] = {"type": "RollingUpdate", "rollingUpdate": strategy}
    return {"kind": "Deployment", "metadata": {"name": "web", "namespace": "task-03"}, "spec": spec}


SHAPES = {
    # the production overlay's numbers (minReadySeconds as the overlay has it)
    "production": deployment(2, 10, {"maxSurge": 1, "maxUnavailable": 0}),
    # the course's: one replica, the API's defaults (25 % / 25 %: maxSurge 1, maxUnavailable 0)
    "course": deployment(1),
    # both numbers above one, so each is counted, not just compared with zero
    "wide": deployment(5, 5, {"maxSurge": 2, "maxUnavailable": 2}),
}


class FakeClock:
    """time.monotonic and time.sleep for the controller: sleep() moves time on and fires what falls due."""

    def __init__(self):
        self.now = 1000.0
        self._due = []  # heap of (when, order, action)
        self._order = itertools.count()

    def __call__(self):
        return self.now

    def at(self, when, action):
        heapq.heappush(self._due, (when, next(self._order), action))

    def sleep(self, seconds):
        until = self.now + seconds
        while self._due and self._due[0][0] <= until:
            when, _, action = heapq.heappop(self._due)
            self.now = max(self.now, when)
            action()
        self.now = until


class FakePod:
    """What the controller and the rule checker read from a pod, as the kubelet keeps it."""

    def __init__(self, clock, plan, name):
        self.clock, self.plan, self.name = clock, plan, name
        self.ready_since = self.deleted_at = self.failure = None
        self.deleting = False
        self.gone = threading.Event()
        self.events = []

    def become_ready(self):
        if not self.deleting:
            self.ready_since = self.clock()
            self.events.append((self.ready_since, "Ready"))

    def delete(self, grace=None, wait=True):
        self.deleting, self.deleted_at = True, self.clock()
        self.clock.at(self.deleted_at + STOP, self.gone.set)

    def describe(self):
        return f"{self.name}: {self.events}"


class FakeCluster:
    """The Cluster's side of a rollout: the Deployment's pods, `replicas` of them Ready long ago."""

    def __init__(self, clock, manifest, startup=STARTUP, fail_start=False):
        self.clock, self.manifests = clock, Manifests([manifest])
        self.startup, self.fail_start = startup, fail_start
        self.plans, self.pods = {}, []
        self._names = itertools.count()
        for _ in range(self.plan("web").replicas):
            pod = self.new_pod(self.plan("web"))
            pod.ready_since = clock() - 3600
            pod.events.append((pod.ready_since, "Ready"))

    def plan(self, name):
        return self.plans.setdefault(name, self.manifests.pod_plan(name))

    def live_pods(self, name):
        return [p for p in self.pods if p.plan.deployment == name and not p.deleting]

    def new_pod(self, plan):
        pod = FakePod(self.clock, plan, f"web-{plan.template_hash[:5]}-{next(self._names)}")
        self.pods.append(pod)
        return pod

    def start_in_background(self, pod):
        if self.fail_start:
            self.clock.at(self.clock() + self.startup, lambda: setattr(pod, "failure", "start failed"))
        elif self.startup is not None:
            self.clock.at(self.clock() + self.startup, pod.become_ready)
        return pod


def roll_out(shape, controller=Rollout, **cluster):
    clock = FakeClock()
    fake = FakeCluster(clock, copy.deepcopy(SHAPES[shape]), **cluster)
    rollout = controller(fake, "web", clock=clock)
    return rollout.run(timeout=600, sleep=clock.sleep)


# ---- mutations: a controller that ignores one rule each ---------------------------------------------------


class IgnoresMaxSurge(Rollout):
    """Creates every new pod at once."""

    def may_create(self, old, new):
        return len(new) < self.plan.replicas


class IgnoresMaxUnavailable(Rollout):
    """Deletes the old pods whatever the new ones are doing."""

    def to_delete(self, old, new, now):
        return old


class IgnoresMinReadySeconds(Rollout):
    """Counts a pod as available as soon as it is Ready."""

    def available(self, pod, now):
        return not pod.deleting and not pod.gone.is_set() and pod.ready_since is not None


class CompletesEarly(Rollout):
    """Says it is done once `replicas` new pods exist, Ready or not, old pods left or not."""

    def step(self):
        return super().step() or len(self.new) >= self.plan.replicas


MUTATIONS = {
    "maxSurge": IgnoresMaxSurge,
    "maxUnavailable": IgnoresMaxUnavailable,
    "minReadySeconds": IgnoresMinReadySeconds,
    "complete": CompletesEarly,
}


# ---- tests ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_rollout__keeps_every_rule__each_shape(shape):
    """The controller replaces every old pod and breaks no rule of the Deployment's numbers."""
    rollout = roll_out(shape)
    replicas = rollout.plan.replicas
    assert broken_rules(rollout) == []
    assert len(rollout.new) == replicas and all(p.deleting for p in rollout.old)
    assert [what for _, what, _ in rollout.events].count("deleted") == replicas


def test_rollout__surges_one_and_waits_min_ready_before_each_deletion__production():
    """Production: one new pod, then an old one deleted once it has been Ready for minReadySeconds, twice."""
    rollout = roll_out("production")
    start = rollout.started_at
    seen = [
        (round(at - start, 1), what, pod and ("new" if pod in rollout.new else "old"))
        for at, what, pod in rollout.events
    ]
    ready = STARTUP + rollout.plan.min_ready  # from a creation to the new pod's availability
    assert seen == [
        (0.0, "created", "new"),
        (ready, "deleted", "old"),
        (round(ready + POLL, 1), "created", "new"),
        (round(2 * ready + POLL, 1), "deleted", "old"),
        (round(2 * ready + 2 * POLL, 1), "complete", None),
    ]


@pytest.mark.parametrize("shape", ["production", "wide"])
@pytest.mark.parametrize("rule", MUTATIONS)
def test_broken_rules__catches_a_controller_that_ignores_a_rule__each_mutation(rule, shape):
    """Each mutation of the controller breaks its rule, and the checker names that rule."""
    rollout = roll_out(shape, MUTATIONS[rule])
    assert rule in {broken for broken, _ in broken_rules(rollout)}, broken_rules(rollout)


def test_broken_rules__catches_a_rollout_started_before_the_old_pods_were_available__production():
    """Old pods Ready for less than minReadySeconds at the start: maxUnavailable is broken from the start."""
    clock = FakeClock()
    fake = FakeCluster(clock, copy.deepcopy(SHAPES["production"]))
    for pod in fake.pods:
        pod.events = [(clock() - 1, "Ready")]
        pod.ready_since = clock() - 1
    rollout = Rollout(fake, "web", clock=clock).run(timeout=600, sleep=clock.sleep)
    assert ("maxUnavailable", "+0.00 s: 0 available []") in broken_rules(rollout)


def test_rollout__raises_when_a_new_pod_fails__production():
    """A new pod whose start failed stops the rollout with the pod's failure."""
    with pytest.raises(RuntimeError, match="start failed"):
        roll_out("production", fail_start=True)


def test_rollout__times_out_when_new_pods_never_get_ready__production():
    """New pods that never become Ready: a TimeoutError, and no old pod deleted (maxUnavailable 0)."""
    clock = FakeClock()
    fake = FakeCluster(clock, copy.deepcopy(SHAPES["production"]), startup=None)
    rollout = Rollout(fake, "web", clock=clock)
    with pytest.raises(TimeoutError, match="not done after 60 s"):
        rollout.run(timeout=60, sleep=clock.sleep)
    assert not any(p.deleting for p in rollout.old) and len(rollout.new) == 1
