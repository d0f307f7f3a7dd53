"""From the rendered k3s overlay to `podman run` arguments, field by field, as the kubelet reads a pod.

`Manifests.render()` renders the overlay (`kubectl kustomize`) and indexes its objects; tests/manifests
reads the base and the overlay through it too. `PodPlan` is one Deployment's pod template, checked and
translated: every field this module meets is either honoured or refused with UnsupportedField, so a
manifest change the emulation cannot follow fails the e2e run instead of being silently ignored.
The few deliberate approximations are named where they are made.

Defaults are the API server's (a rendered manifest has none filled in): probe periodSeconds 10,
timeoutSeconds 1, failureThreshold 3; terminationGracePeriodSeconds 30. Only what a manifest here uses is
emulated (README.md lists what that leaves out).
"""

import hashlib
import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
KUSTOMIZE = REPO / "kustomize"
BASE = KUSTOMIZE / "base"
OVERLAY = KUSTOMIZE / "overlays" / "k3s"
PRODUCTION = KUSTOMIZE / "overlays" / "production"
CLUSTER_DOMAIN = "cluster.local"
# The kubelet refuses to start a container with less than this after the preStop hook (kuberuntime).
MINIMUM_GRACE_SECONDS = 2
# Pod names are <deployment>-<pod-template-hash>-<5 chars>, in this alphabet (k8s.io/apimachinery rand).
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


class UnsupportedField(ValueError):
    """The manifest uses something this emulation does not do; the message names the field."""


def render(directory=OVERLAY, kubectl="kubectl"):
    """`kubectl kustomize <directory>`: the YAML stream users apply."""
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    return result.stdout


class Manifests:
    """The objects of a rendered kustomization (the k3s overlay unless told), looked up by kind and name."""

    def __init__(self, objects, text=None):
        self.objects = objects
        self.text = text  # the YAML stream they were read from, when rendered

    @classmethod
    def render(cls, directory=OVERLAY, kubectl="kubectl"):
        text = render(directory, kubectl)
        return cls([doc for doc in yaml.safe_load_all(text) if doc], text)

    def get(self, kind, name):
        """The one object of this kind and name."""
        found = [obj for obj in self.of_kind(kind) if obj["metadata"]["name"] == name]
        if len(found) != 1:
            raise KeyError(f"expected one {kind} named {name} in the rendered manifests, found {len(found)}")
        return found[0]

    def of_kind(self, kind):
        return [obj for obj in self.objects if obj["kind"] == kind]

    def pod_plan(self, deployment):
        return PodPlan(self.get("Deployment", deployment), self)

    def budgets_selecting(self, namespace, labels):
        """The PodDisruptionBudgets of `namespace` that select these pod labels (minAvailable, a number)."""
        found = []
        for budget in self.of_kind("PodDisruptionBudget"):
            where = f"PodDisruptionBudget {budget['metadata']['name']}"
            check_fields(budget["spec"], {"minAvailable", "selector"}, f"{where}: spec")
            check_fields(budget["spec"]["selector"], {"matchLabels"}, f"{where}: spec.selector")
            require(isinstance(budget["spec"].get("minAvailable"), int), where, "only a number minAvailable")
            selector = budget["spec"]["selector"]["matchLabels"]
            if budget["metadata"].get("namespace") == namespace and selects(selector, labels):
                found.append(budget)
        return found

    def services_selecting(self, namespace, labels):
        """The Services of `namespace` whose selector matches these pod labels."""
        found = []
        for service in self.of_kind("Service"):
            if service["metadata"].get("namespace") == namespace and selects(
                service_selector(service), labels
            ):
                found.append(service)
        return found


def selects(selector, labels):
    """An equality selector ({key: value}, a Service's or a matchLabels) selects these pod labels."""
    return all(labels.get(key) == value for key, value in selector.items())


def service_selector(service):
    """A Service's selector; one without any (endpoints kept by hand) is not emulated."""
    selector = service["spec"].get("selector")
    if not selector:
        raise UnsupportedField(f"Service {service['metadata']['name']}: no selector (manual endpoints)")
    return selector


# ---- field checking -------------------------------------------------------------------------------------


def check_fields(obj, allowed, where):
    """Refuse any key of `obj` not in `allowed`."""
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        raise UnsupportedField(f"{where}: the e2e kubelet does not emulate {', '.join(unknown)}")


def require(condition, where, message):
    if not condition:
        raise UnsupportedField(f"{where}: {message}")


QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
QUANTITY_FACTOR = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
QUANTITY_FACTOR |= {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(value, where):
    """A Kubernetes resource quantity ("500m", "256Mi", "2") as a number."""
    match = QUANTITY.match(str(value))
    require(match, where, f"cannot read the quantity {value!r}")
    return float(match.group(1)) * QUANTITY_FACTOR[match.group(2)]


# ---- the pod template -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpProbe:
    kind: str  # "startup", "liveness" or "readiness"
    path: str
    port: int  # container port
    initial_delay: float = 0
    period: float = 10
    timeout: float = 1
    failure_threshold: int = 3
    termination_grace: float | None = None  # probe-level override for the kill after a failure

    @property
    def budget(self):
        """The longest this probe may keep failing before the kubelet acts (s)."""
        return self.initial_delay + self.failure_threshold * self.period


@dataclass
class Downward:
    """What the Downward API knows about one pod."""

    name: str
    namespace: str
    uid: str
    ip: str
    host_ip: str
    node_name: str
    labels: dict = field(default_factory=dict)
    annotations: dict = field(default_factory=dict)
    service_account: str = "default"


DEPLOYMENT_SPEC_FIELDS = {"replicas", "selector", "template", "minReadySeconds", "strategy"}
POD_SPEC_FIELDS = {
    "containers",
    "topologySpreadConstraints",
    "volumes",
    "securityContext",
    "terminationGracePeriodSeconds",
    "automountServiceAccountToken",
    "restartPolicy",
    "dnsPolicy",
    "enableServiceLinks",
}
CONTAINER_FIELDS = {
    "name",
    "image",
    "imagePullPolicy",
    "command",
    "args",
    "workingDir",
    "env",
    "ports",
    "resources",
    "securityContext",
    "volumeMounts",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
}
POD_SECURITY_FIELDS = {
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "fsGroup",
    "seccompProfile",
}
CONTAINER_SECURITY_FIELDS = {
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "readOnlyRootFilesystem",
    "allowPrivilegeEscalation",
    "capabilities",
    "privileged",
    "seccompProfile",
}
PROBE_FIELDS = {
    "httpGet",
    "initialDelaySeconds",
    "periodSeconds",
    "timeoutSeconds",
    "failureThreshold",
    "terminationGracePeriodSeconds",
}
FIELD_REFS = {
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.podIP",
    "status.podIPs",
    "status.hostIP",
    "status.hostIPs",
}
# $(VAR) and $$ (a literal $), which Kubernetes replaces in env values, command and args.
VAR_REF = re.compile(r"\$[($]")


class PodPlan:
    """One Deployment's pod template, checked and ready to be run by podman."""

    def __init__(self, deployment, manifests):
        self.deployment = deployment["metadata"]["name"]
        self.namespace = deployment["metadata"].get("namespace", "default")
        template = deployment["spec"]["template"]
        self.template = template
        self.labels = dict(template["metadata"].get("labels", {}))
        self.annotations = dict(template["metadata"].get("annotations", {}))
        self.manifests = manifests
        self._rollout_fields(deployment["spec"])
        where = f"Deployment {self.deployment}: spec.template.spec"
        spec = template["spec"]
        check_fields(spec, POD_SPEC_FIELDS, where)
        for constraint in spec.get("topologySpreadConstraints", []):
            # One node: a soft spread (ScheduleAnyway) places every pod there, as a one-node cluster would.
            require(
                constraint.get("whenUnsatisfiable") == "ScheduleAnyway",
                f"{where}.topologySpreadConstraints",
                "only whenUnsatisfiable ScheduleAnyway (one node here)",
            )
        require(spec.get("restartPolicy", "Always") == "Always", where, "only restartPolicy Always")
        require(spec.get("dnsPolicy", "ClusterFirst") == "ClusterFirst", where, "only dnsPolicy ClusterFirst")
        # No service account token is ever mounted here; a pod that wants one would not get it.
        require(
            spec.get("automountServiceAccountToken") is False,
            where,
            "needs automountServiceAccountToken: false",
        )
        # Approximation: service links (SVC_BACKEND_SERVICE_HOST, ... for enableServiceLinks, default true)
        # are not injected: there are no ClusterIPs here, and neither service reads them.
        require(len(spec["containers"]) == 1, where, "exactly one container (no sidecars)")
        self.grace = float(spec.get("terminationGracePeriodSeconds", 30))
        self.pod_security = spec.get("securityContext", {})
        check_fields(self.pod_security, POD_SECURITY_FIELDS, f"{where}.securityContext")
        self.volumes = {
            volume["name"]: self._volume(volume, f"{where}.volumes") for volume in spec.get("volumes", [])
        }
        self.container = spec["containers"][0]
        self.where = f"{where}.containers[0]"
        check_fields(self.container, CONTAINER_FIELDS, self.where)
        self._refuse_references()
        self.mounts = self._mounts()
        self.name = self.container["name"]
        self.image = self.container["image"]
        self.ports = self._ports()
        self.probes = self._probes()
        self.pre_stop = self._pre_stop()
        self.security = self._security()
        self.template_hash = self._template_hash()

    # -- pieces ---------------------------------------------------------------------------------------------

    def _rollout_fields(self, spec):
        """replicas, minReadySeconds and the RollingUpdate strategy (the API server's defaults: 1, 0, 25%)."""
        where = f"Deployment {self.deployment}: spec"
        check_fields(spec, DEPLOYMENT_SPEC_FIELDS, where)
        selector = spec.get("selector", {"matchLabels": {}})  # required by the API; tests' fragments omit it
        check_fields(selector, {"matchLabels"}, f"{where}.selector")
        labels = spec["template"]["metadata"].get("labels", {})
        require(
            selects(selector["matchLabels"], labels),
            where,
            "the selector must select the template's labels",
        )
        self.replicas = int(spec.get("replicas", 1))
        self.min_ready = float(spec.get("minReadySeconds", 0))
        strategy = spec.get("strategy", {"type": "RollingUpdate"})
        check_fields(strategy, {"type", "rollingUpdate"}, f"{where}.strategy")
        require(strategy.get("type") == "RollingUpdate", where, "only the RollingUpdate strategy")
        rolling = strategy.get("rollingUpdate", {})
        check_fields(rolling, {"maxSurge", "maxUnavailable"}, f"{where}.strategy.rollingUpdate")
        # Percentages as the controller rounds them: surge up, unavailable down.
        self.max_surge = self._count(rolling.get("maxSurge", "25%"), round_up=True)
        self.max_unavailable = self._count(rolling.get("maxUnavailable", "25%"), round_up=False)
        if self.max_surge == 0 and self.max_unavailable == 0:
            self.max_unavailable = 1  # as the controller does when both round to 0

    def _count(self, value, round_up):
        if isinstance(value, int):
            return value
        require(str(value).endswith("%"), self.deployment, f"cannot read {value!r}")
        share = self.replicas * int(str(value)[:-1])
        return -(-share // 100) if round_up else share // 100

    def _volume(self, volume, where):
        check_fields(volume, {"name", "emptyDir", "hostPath"}, f"{where}[{volume['name']}]")
        if "hostPath" in volume:
            # Only what the benchmark's bare-WSGI pod needs: an existing directory, mounted read-only.
            host_path = volume["hostPath"]
            check_fields(host_path, {"path", "type"}, f"{where}[{volume['name']}].hostPath")
            require(host_path.get("type") == "Directory", where, "hostPath: only type Directory")
            return {"host_path": host_path["path"]}
        empty_dir = volume.get("emptyDir")
        require(empty_dir is not None, where, f"volume {volume['name']}: only emptyDir or hostPath")
        check_fields(empty_dir, {"medium", "sizeLimit"}, f"{where}[{volume['name']}].emptyDir")
        medium = empty_dir.get("medium", "")
        require(medium in ("", "Memory"), where, f"emptyDir medium {medium!r}")
        size = empty_dir.get("sizeLimit")
        return {"medium": medium, "size": int(quantity(size, where)) if size else None}

    def _refuse_references(self):
        """Kubernetes expands $(VAR) in env values, command and args; here they would reach the container
        as written, so they are refused."""
        env = self.container.get("env", [])
        texts = [(f"env[{var['name']}]", var["value"]) for var in env if "value" in var]
        texts += [(part, text) for part in ("command", "args") for text in self.container.get(part) or []]
        for where, text in texts:
            require(
                not VAR_REF.search(str(text)), f"{self.where}.{where}", f"$(VAR) is not expanded: {text!r}"
            )

    def _ports(self):
        ports = {}
        for port in self.container.get("ports", []):
            check_fields(port, {"containerPort", "name", "protocol"}, f"{self.where}.ports")
            require(port.get("protocol", "TCP") == "TCP", self.where, "only TCP ports")
            ports[port.get("name") or str(port["containerPort"])] = int(port["containerPort"])
        return ports

    def port_number(self, port):
        """A probe's or Service's port: a number, or the name of a container port."""
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        require(port in self.ports, self.where, f"no container port named {port!r}")
        return self.ports[port]

    def _probes(self):
        probes = {}
        for kind in ("startup", "liveness", "readiness"):
            spec = self.container.get(f"{kind}Probe")
            if spec is None:
                continue
            where = f"{self.where}.{kind}Probe"
            check_fields(spec, PROBE_FIELDS, where)
            require("httpGet" in spec, where, "only httpGet probes")
            http_get = spec["httpGet"]
            check_fields(http_get, {"path", "port", "scheme"}, f"{where}.httpGet")
            require(http_get.get("scheme", "HTTP") == "HTTP", where, "only scheme HTTP")
            grace = spec.get("terminationGracePeriodSeconds")
            probes[kind] = HttpProbe(
                kind=kind,
                path=http_get.get("path", "/"),
                port=self.port_number(http_get["port"]),
                initial_delay=float(spec.get("initialDelaySeconds", 0)),
                period=float(spec.get("periodSeconds", 10)),
                timeout=float(spec.get("timeoutSeconds", 1)),
                failure_threshold=int(spec.get("failureThreshold", 3)),
                termination_grace=float(grace) if grace is not None else None,
            )
        return probes

    def _pre_stop(self):
        lifecycle = self.container.get("lifecycle")
        if not lifecycle:
            return None
        check_fields(lifecycle, {"preStop"}, f"{self.where}.lifecycle")
        check_fields(lifecycle["preStop"], {"exec"}, f"{self.where}.lifecycle.preStop")
        command = lifecycle["preStop"]["exec"]["command"]
        require(command, self.where, "preStop.exec.command is empty")
        return list(command)

    def _security(self):
        """Container securityContext over the pod's, as the kubelet merges them."""
        own = self.container.get("securityContext", {})
        where = f"{self.where}.securityContext"
        check_fields(own, CONTAINER_SECURITY_FIELDS, where)
        merged = {key: self.pod_security[key] for key in POD_SECURITY_FIELDS if key in self.pod_security}
        merged.update(own)
        require(not merged.get("privileged", False), where, "privileged containers")
        capabilities = merged.get("capabilities", {})
        check_fields(capabilities, {"drop", "add"}, f"{where}.capabilities")
        seccomp = merged.get("seccompProfile", {"type": "RuntimeDefault"})
        require(seccomp.get("type") == "RuntimeDefault", where, f"seccompProfile {seccomp}")
        return merged

    def _template_hash(self):
        digest = hashlib.sha256(json.dumps(self.template, sort_keys=True).encode()).digest()
        return "".join(NAME_ALPHABET[byte % len(NAME_ALPHABET)] for byte in digest[:10])

    def pull_policy(self):
        """podman's --pull for imagePullPolicy; there is no registry, so Always cannot be honoured."""
        policy = self.container.get("imagePullPolicy")
        if policy is None:
            tag = self.image.rpartition(":")[2] if ":" in self.image.rpartition("/")[2] else "latest"
            policy = "Always" if tag == "latest" else "IfNotPresent"
        require(
            policy in ("Never", "IfNotPresent"), self.where, f"imagePullPolicy {policy} (no registry here)"
        )
        return "never" if policy == "Never" else "missing"

    # -- what the kubelet computes per pod ------------------------------------------------------------------

    def user(self, image_user):
        """(uid, gid) the container runs as; enforces runAsNonRoot like the kubelet (numeric check)."""
        uid = self.security.get("runAsUser")
        gid = self.security.get("runAsGroup")
        if uid is None:
            # The image's USER, which must then be numeric for runAsNonRoot to be verifiable.
            name, _, group = (image_user or "0").partition(":")
            require(name.isdigit(), self.where, f"image USER {image_user!r} is not numeric; runAsUser unset")
            uid = int(name)
            gid = gid if gid is not None else (int(group) if group.isdigit() else None)
        if self.security.get("runAsNonRoot"):
            require(int(uid) != 0, self.where, "runAsNonRoot but the container would run as uid 0")
        return int(uid), (int(gid) if gid is not None else None)

    def env(self, downward):
        """The container's environment, in manifest order."""
        values = {}
        for var in self.container.get("env", []):
            where = f"{self.where}.env[{var['name']}]"
            check_fields(var, {"name", "value", "valueFrom"}, where)
            if "valueFrom" not in var:
                values[var["name"]] = str(var.get("value", ""))
                continue
            source = var["valueFrom"]
            check_fields(source, {"fieldRef", "configMapKeyRef"}, f"{where}.valueFrom")
            if "fieldRef" in source:
                values[var["name"]] = self._field(source["fieldRef"]["fieldPath"], downward, where)
            else:
                ref = source["configMapKeyRef"]
                data = self._config_map(ref["name"], ref.get("optional", False))
                if ref["key"] in data:
                    values[var["name"]] = data[ref["key"]]
                else:
                    require(
                        ref.get("optional", False), where, f"ConfigMap {ref['name']} has no key {ref['key']}"
                    )
        return values

    def _config_map(self, name, optional):
        try:
            return dict(self.manifests.get("ConfigMap", name).get("data", {}))
        except KeyError:
            require(optional, self.where, f"ConfigMap {name} is not in the overlay")
            return {}

    def _field(self, path, downward, where):
        label = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
        if label:
            return getattr(downward, label.group(1)).get(label.group(2), "")
        require(path in FIELD_REFS, where, f"fieldRef {path}")
        return {
            "metadata.name": downward.name,
            "metadata.namespace": downward.namespace,
            "metadata.uid": downward.uid,
            "spec.nodeName": downward.node_name,
            "spec.serviceAccountName": downward.service_account,
            "status.podIP": downward.ip,
            "status.podIPs": downward.ip,
            "status.hostIP": downward.host_ip,
            "status.hostIPs": downward.host_ip,
        }[path]

    def command_and_args(self):
        """(entrypoint override or None, args), as the kubelet builds them."""
        command = self.container.get("command")
        args = [str(arg) for arg in self.container.get("args", [])]
        return (None if command is None else [str(part) for part in command]), args

    def resource_args(self):
        """Limits the runtime enforces (--memory, --cpus) and the CPU request's weight (--cpu-shares).

        The memory request only influences scheduling and the OOM score; nothing here schedules.
        """
        resources = self.container.get("resources", {})
        where = f"{self.where}.resources"
        check_fields(resources, {"limits", "requests"}, where)
        for part in ("limits", "requests"):
            check_fields(resources.get(part, {}), {"cpu", "memory"}, f"{where}.{part}")
        limits, requests = resources.get("limits", {}), resources.get("requests", {})
        args = []
        if "memory" in limits:
            args += ["--memory", str(int(quantity(limits["memory"], where)))]
        if "cpu" in limits:
            args += ["--cpus", f"{quantity(limits['cpu'], where):g}"]
        if "cpu" in requests:
            # kubelet: shares = milliCPU * 1024 / 1000, at least 2.
            args += ["--cpu-shares", str(max(2, int(quantity(requests["cpu"], where) * 1024)))]
        return args

    def security_args(self, image_user):
        uid, gid = self.user(image_user)
        args = ["--user", f"{uid}:{gid}" if gid is not None else str(uid)]
        if "fsGroup" in self.security:
            args += ["--group-add", str(self.security["fsGroup"])]
        if self.security.get("readOnlyRootFilesystem"):
            # --read-only-tmpfs=false: podman would otherwise mount writable /tmp, /run and /var/tmp,
            # which a Kubernetes container with readOnlyRootFilesystem does not have.
            args += ["--read-only", "--read-only-tmpfs=false"]
        capabilities = self.security.get("capabilities", {})
        for cap in capabilities.get("drop", []):
            args += ["--cap-drop", cap]
        for cap in capabilities.get("add", []):
            args += ["--cap-add", cap]
        if self.security.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        return args

    def empty_dirs(self):
        """{volume name: sizeLimit in bytes or None} of the emptyDir volumes the container mounts."""
        return {name: volume["size"] for name, volume in self.volumes.items() if "size" in volume}

    def volume_args(self, empty_dirs=None):
        """The container's mounts; `empty_dirs` maps each emptyDir volume to the pod's directory for it on the
        node (Pod.start makes them), bind-mounted as the kubelet does."""
        args = []
        for mount, volume in self.mounts:
            source = volume["host_path"] if "host_path" in volume else (empty_dirs or {})[mount["name"]]
            args += ["--volume", f"{source}:{mount['mountPath']}:{'ro' if mount.get('readOnly') else 'rw'}"]
        return args

    def _mounts(self):
        """(volumeMount, volume) of each mount: an emptyDir, or a hostPath directory mounted read-only.

        Approximation, harmless for these services: fsGroup adds the supplementary group without chgrp-ing
        an emptyDir (it is mode 0777 either way). A disk emptyDir's sizeLimit is enforced by eviction, not by
        the filesystem; it becomes a tmpfs of that size here, as a memory one is.
        """
        mounts = []
        for mount in self.container.get("volumeMounts", []):
            where = f"{self.where}.volumeMounts[{mount['name']}]"
            check_fields(mount, {"name", "mountPath", "readOnly"}, where)
            volume = self.volumes.get(mount["name"])
            require(volume is not None, where, "no volume of that name")
            if "host_path" in volume:
                require(mount.get("readOnly") is True, where, "hostPath volumes are mounted readOnly only")
            mounts.append((mount, volume))
        return mounts
