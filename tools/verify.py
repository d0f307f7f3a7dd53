"""Grade a live task-03 deployment the way the course does and print a score table.

    python tools/verify.py [--namespace task-03] [--kubectl kubectl] [--wait 15]

Two layers, so the grading can be tested without a cluster:

* `Cluster` is the only I/O: subprocess calls to kubectl (get, logs, exec, delete).
* The `grade_*` functions are pure: they take parsed `kubectl -o json` objects, HTTP results or log
  counts and return a `CheckResult` (criterion, points, got, detail), all-or-nothing per criterion.

HTTP checks go through the Services by their in-cluster DNS names, with curl run inside the
frontend container (its image ships curl), so no extra image is pulled. The graceful-shutdown check
counts `POST /game-over` in the backend's log, deletes the frontend pod, polls the log for up to
--wait seconds, then waits for the replacement frontend to be Ready so the cluster is left healthy.

Exit status: 0 at full marks, 1 below full marks, 2 when kubectl itself cannot be used.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

GAME_OVER_MARKER = "POST /game-over"
BACKEND_PORT = 5000
FRONTEND_PORT = 8080

# Criterion names and points, in the order of the spec's evaluation table. Its heading says
# "100 points" but its rows add up to 105; the rows are what the course awards, so they are kept
# as written and the table's total is also shown scaled to 100.
POINTS = {
    "Backend Deployment": 5,
    "Frontend Deployment": 5,
    "Backend Service": 5,
    "Frontend Service": 5,
    "Backend /get-config": 10,
    "Backend /ping": 10,
    "Frontend /startup": 15,
    "Frontend /who-am-i": 15,
    "Frontend /health": 10,
    "Startup Probe Configured": 10,
    "Liveness Probe Configured": 10,
    "Graceful Shutdown": 5,
}

# What the API server fills in when a probe leaves a field out; live objects always carry them,
# hand-written ones may not.
PROBE_DEFAULTS = {"periodSeconds": 10, "failureThreshold": 3, "timeoutSeconds": 1}

# The status goes on a line of its own after the body; -sS keeps errors but no progress meter.
CURL = ["curl", "-sS", "--max-time", "5", "-w", r"\n%{http_code}"]


# --- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    """One row of the score table."""

    criterion: str
    points: int
    got: int
    detail: str

    @property
    def passed(self) -> bool:
        return self.got == self.points


def passed(criterion: str, detail: str) -> CheckResult:
    return CheckResult(criterion, POINTS[criterion], POINTS[criterion], detail)


def failed(criterion: str, detail: str) -> CheckResult:
    return CheckResult(criterion, POINTS[criterion], 0, detail)


def verdict(criterion: str, problems: list[str], ok_detail: str) -> CheckResult:
    """Full points when there are no problems, else none, with the problems as the detail."""
    if problems:
        return failed(criterion, "; ".join(problems))
    return passed(criterion, ok_detail)


@dataclass(frozen=True)
class HttpResult:
    """What curl saw: the status (None when no response arrived), the body, or the error."""

    status: int | None
    body: str = ""
    error: str = ""

    def json_object(self) -> dict | None:
        try:
            value = json.loads(self.body)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


def parse_curl_output(returncode: int, stdout: str, stderr: str) -> HttpResult:
    """Split `curl -sS -w '\\n%{http_code}'` output into status and body."""
    if returncode != 0:
        return HttpResult(None, error=stderr.strip() or f"exit status {returncode}")
    body, _, code = stdout.rpartition("\n")
    if not code.strip().isdigit() or int(code) == 0:
        return HttpResult(None, error=f"no HTTP status in curl output {stdout[-80:]!r}")
    return HttpResult(int(code), body)


# --- pure helpers on kubectl JSON -------------------------------------------------------------


def first_container(deployment: dict) -> dict:
    containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers")
    return containers[0] if containers else {}


def is_ready(pod: dict) -> bool:
    """Ready and not being deleted (a terminating pod can still report Ready for a while)."""
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return False
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def ready_pod_names(pods: list[dict]) -> list[str]:
    return [pod["metadata"]["name"] for pod in pods if is_ready(pod)]


def count_game_over(log_text: str) -> int:
    return log_text.count(GAME_OVER_MARKER)


def shorten(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- grading: resources -----------------------------------------------------------------------


def deployment_problems(deployment: dict | None, app: str, port: int) -> list[str]:
    if deployment is None:
        return [f"deployment/{app} not found"]
    spec = deployment.get("spec", {})
    problems = []
    if spec.get("replicas") != 1:
        problems.append(f"replicas is {spec.get('replicas')}, want 1")
    if spec.get("selector", {}).get("matchLabels", {}).get("app") != app:
        problems.append(f"selector.matchLabels lacks app: {app}")
    if spec.get("template", {}).get("metadata", {}).get("labels", {}).get("app") != app:
        problems.append(f"pod template labels lack app: {app}")
    ports = [p.get("containerPort") for p in first_container(deployment).get("ports", [])]
    if port not in ports:
        problems.append(f"containers[0] containerPorts are {ports}, want {port}")
    return problems


def grade_deployment(criterion: str, deployment: dict | None, app: str, port: int) -> CheckResult:
    problems = deployment_problems(deployment, app, port)
    if problems:
        return failed(criterion, "; ".join(problems))
    status = deployment.get("status", {})
    ready = f"{status.get('readyReplicas', 0)}/{deployment['spec']['replicas']} ready"
    return passed(criterion, f"replicas 1, app: {app}, containerPort {port}, {ready}")


def service_problems(service: dict | None, name: str, kind: str, app: str, port: int) -> list[str]:
    if service is None:
        return [f"service/{name} not found"]
    spec = service.get("spec", {})
    problems = []
    if spec.get("type") != kind:
        problems.append(f"type is {spec.get('type')}, want {kind}")
    if spec.get("selector", {}).get("app") != app:
        problems.append(f"selector lacks app: {app}")
    entry = next((p for p in spec.get("ports", []) if p.get("port") == port), None)
    if entry is None:
        problems.append(f"no port {port} (ports: {[p.get('port') for p in spec.get('ports', [])]})")
    elif entry.get("targetPort") != port:
        problems.append(f"port {port} targets {entry.get('targetPort')!r}, want {port}")
    return problems


def grade_service(
    criterion: str, service: dict | None, name: str, kind: str, app: str, port: int
) -> CheckResult:
    problems = service_problems(service, name, kind, app, port)
    if problems:
        return failed(criterion, "; ".join(problems))
    detail = f"{kind} {port}->{port}"
    node_port = next(p.get("nodePort") for p in service["spec"]["ports"] if p["port"] == port)
    if node_port:
        detail += f", nodePort {node_port}"
    return passed(criterion, detail)


# --- grading: probes --------------------------------------------------------------------------


def probe_problems(probe: dict | None, kind: str, path: str, fields: dict[str, int]) -> list[str]:
    """Compare an httpGet probe with the rubric: path, port FRONTEND_PORT, then `fields`."""
    if not probe:
        return [f"containers[0] has no {kind}"]
    http_get = probe.get("httpGet")
    if not http_get:
        return [f"{kind} is not an httpGet probe"]
    problems = []
    if http_get.get("path") != path:
        problems.append(f"path is {http_get.get('path')!r}, want {path!r}")
    if http_get.get("port") != FRONTEND_PORT:
        problems.append(f"port is {http_get.get('port')!r}, want {FRONTEND_PORT}")
    for field, want in fields.items():
        have = probe.get(field, PROBE_DEFAULTS.get(field))
        if have != want:
            problems.append(f"{field} is {have}, want {want}")
    return problems


def describe_probe(probe: dict) -> str:
    period = probe.get("periodSeconds", PROBE_DEFAULTS["periodSeconds"])
    threshold = probe.get("failureThreshold", PROBE_DEFAULTS["failureThreshold"])
    http_get = probe["httpGet"]
    return f"GET {http_get['path']} :{http_get['port']}, period {period}s x {threshold}"


def grade_probe(
    criterion: str, deployment: dict | None, key: str, path: str, fields: dict[str, int]
) -> CheckResult:
    if deployment is None:
        return failed(criterion, "deployment/frontend not found")
    probe = first_container(deployment).get(key)
    problems = probe_problems(probe, key, path, fields)
    return verdict(criterion, problems, "" if problems else describe_probe(probe))


def grade_startup_probe(deployment: dict | None) -> CheckResult:
    return grade_probe("Startup Probe Configured", deployment, "startupProbe", "/startup", {})


def grade_liveness_probe(deployment: dict | None) -> CheckResult:
    fields = {"periodSeconds": 5, "failureThreshold": 3}
    return grade_probe("Liveness Probe Configured", deployment, "livenessProbe", "/health", fields)


# --- grading: HTTP ----------------------------------------------------------------------------


def http_problem(result: HttpResult) -> str:
    """Why a response is not a 200 with a JSON object body ('' when it is)."""
    if result.status is None:
        return f"no response: {shorten(result.error)}"
    if result.status != 200:
        return f"HTTP {result.status}: {shorten(result.body)}"
    if result.json_object() is None:
        return f"body is not a JSON object: {shorten(result.body)}"
    return ""


def backend_code(get_config: HttpResult) -> str | None:
    """The code from a good /get-config answer, else None."""
    if http_problem(get_config):
        return None
    code = get_config.json_object().get("code")
    return code if isinstance(code, str) and code else None


def grade_get_config(result: HttpResult) -> CheckResult:
    criterion = "Backend /get-config"
    problem = http_problem(result)
    if problem:
        return failed(criterion, problem)
    body = result.json_object()
    missing = [key for key in ("code", "status") if not body.get(key)]
    if missing:
        return failed(criterion, f"missing {', '.join(missing)}: {shorten(result.body)}")
    return passed(criterion, f"code {body['code']}, status {body['status']}")


def grade_simple_get(criterion: str, result: HttpResult) -> CheckResult:
    problem = http_problem(result)
    return verdict(criterion, [problem] if problem else [], f"200 {shorten(result.body)}")


def grade_ping(result: HttpResult) -> CheckResult:
    return grade_simple_get("Backend /ping", result)


def grade_health(result: HttpResult) -> CheckResult:
    return grade_simple_get("Frontend /health", result)


def code_problem(field: str, have: object, want: str | None) -> str:
    if want is None:
        return f"{field} {have!r} cannot be checked: backend /get-config gave no code"
    if have != want:
        return f"{field} is {have!r}, backend /get-config says {want!r}"
    return ""


def grade_startup(result: HttpResult, want_code: str | None) -> CheckResult:
    criterion = "Frontend /startup"
    problem = http_problem(result) or code_problem(
        "backend_code", result.json_object().get("backend_code"), want_code
    )
    return verdict(criterion, [problem] if problem else [], f"200, backend_code {want_code}")


def grade_who_am_i(result: HttpResult, pod_names: list[str], want_code: str | None) -> CheckResult:
    criterion = "Frontend /who-am-i"
    problem = http_problem(result)
    if problem:
        return failed(criterion, problem)
    body = result.json_object()
    problems = []
    if body.get("name") not in pod_names:
        problems.append(f"name is {body.get('name')!r}, frontend pods are {pod_names}")
    problems.append(code_problem("code", body.get("code"), want_code))
    problems = [p for p in problems if p]
    return verdict(criterion, problems, f"name {body.get('name')}, code {body.get('code')}")


# --- grading: graceful shutdown ---------------------------------------------------------------


@dataclass(frozen=True)
class ShutdownObservation:
    """What happened around the frontend pod's deletion (error set if it could not be run)."""

    pod: str = ""
    before: int = 0
    after: int = 0
    waited: float = 0.0
    replacement: str = ""
    error: str = ""


def grade_graceful_shutdown(seen: ShutdownObservation) -> CheckResult:
    criterion = "Graceful Shutdown"
    if seen.error:
        return failed(criterion, seen.error)
    counts = f"'{GAME_OVER_MARKER}' in backend log: {seen.before} -> {seen.after}"
    tail = f"; {seen.replacement}" if seen.replacement else ""
    if seen.after > seen.before:
        return passed(criterion, f"{counts} within {seen.waited:.0f}s of deleting {seen.pod}{tail}")
    return failed(criterion, f"{counts} in {seen.waited:.0f}s after deleting {seen.pod}{tail}")


# --- I/O: kubectl -----------------------------------------------------------------------------


class KubectlError(RuntimeError):
    """kubectl could not be run, or failed in a way no check can grade."""


def last_line(stderr: str) -> str:
    """kubectl's own message is its last line; client-go's retry noise comes before it."""
    lines = stderr.strip().splitlines()
    return lines[-1] if lines else "(no message)"


class Cluster:
    """Thin wrapper over the kubectl CLI, scoped to one namespace."""

    def __init__(self, kubectl: Sequence[str], namespace: str, timeout: float = 60.0) -> None:
        self.kubectl = list(kubectl)
        self.namespace = namespace
        self.timeout = timeout

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [*self.kubectl, "-n", self.namespace, *args]
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=self.timeout, check=False)
        except FileNotFoundError as exc:
            raise KubectlError(f"cannot run {self.kubectl[0]!r}: {exc.strerror}") from exc
        except subprocess.TimeoutExpired as exc:
            raise KubectlError(f"timed out after {self.timeout:.0f}s: {shlex.join(command)}") from exc

    def _checked(self, *args: str) -> str:
        proc = self._run(*args)
        if proc.returncode != 0:
            raise KubectlError(f"kubectl {' '.join(args)}: {last_line(proc.stderr)}")
        return proc.stdout

    def get_json(self, kind: str, name: str) -> dict | None:
        """The object as `kubectl get -o json` prints it, or None when it does not exist."""
        proc = self._run("get", kind, name, "-o", "json")
        if proc.returncode == 0:
            return json.loads(proc.stdout)
        if "NotFound" in proc.stderr:
            return None
        raise KubectlError(f"kubectl get {kind} {name}: {last_line(proc.stderr)}")

    def list_pods(self, selector: str) -> list[dict]:
        return json.loads(self._checked("get", "pods", "-l", selector, "-o", "json"))["items"]

    def logs(self, pod: str) -> str:
        return self._checked("logs", pod)

    def exec_curl(self, url: str) -> HttpResult:
        """GET `url` with curl inside the frontend container (its image ships curl)."""
        proc = self._run("exec", "deploy/frontend", "-c", "frontend", "--", *CURL, url)
        return parse_curl_output(proc.returncode, proc.stdout, proc.stderr)

    def delete_pod(self, pod: str) -> None:
        # --wait=false: return at once, so the --wait window starts at the deletion, not at its end.
        self._checked("delete", "pod", pod, "--wait=false")


# --- orchestration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    namespace: str = "task-03"
    wait: float = 15.0
    poll_interval: float = 1.0
    ready_timeout: float = 120.0


def service_url(service: str, namespace: str, port: int, path: str) -> str:
    return f"http://{service}.{namespace}.svc.cluster.local:{port}{path}"


def note(message: str) -> None:
    print(f"verify: {message}", file=sys.stderr, flush=True)


def check_resources(cluster: Cluster) -> tuple[list[CheckResult], dict | None]:
    """Deployments and Services; also returns the frontend Deployment for the probe checks."""
    backend = cluster.get_json("deployment", "backend")
    frontend = cluster.get_json("deployment", "frontend")
    backend_svc = cluster.get_json("service", "svc-backend")
    frontend_svc = cluster.get_json("service", "svc-frontend")
    results = [
        grade_deployment("Backend Deployment", backend, "backend", BACKEND_PORT),
        grade_deployment("Frontend Deployment", frontend, "frontend", FRONTEND_PORT),
        grade_service("Backend Service", backend_svc, "svc-backend", "ClusterIP", "backend", BACKEND_PORT),
        grade_service(
            "Frontend Service", frontend_svc, "svc-frontend", "NodePort", "frontend", FRONTEND_PORT
        ),
    ]
    return results, frontend


def check_http(cluster: Cluster, namespace: str) -> list[CheckResult]:
    def backend(path: str) -> HttpResult:
        return cluster.exec_curl(service_url("svc-backend", namespace, BACKEND_PORT, path))

    def frontend(path: str) -> HttpResult:
        return cluster.exec_curl(service_url("svc-frontend", namespace, FRONTEND_PORT, path))

    get_config = backend("/get-config")
    code = backend_code(get_config)
    pod_names = ready_pod_names(cluster.list_pods("app=frontend"))
    return [
        grade_get_config(get_config),
        grade_ping(backend("/ping")),
        grade_startup(frontend("/startup"), code),
        grade_who_am_i(frontend("/who-am-i"), pod_names, code),
        grade_health(frontend("/health")),
    ]


def poll_until(
    condition: Callable[[], bool],
    timeout: float,
    interval: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Call `condition` until it is true or `timeout` has passed; return the seconds waited."""
    start = clock()
    while not condition() and (left := timeout - (clock() - start)) > 0:
        sleep(min(interval, left))
    return clock() - start


def observe_shutdown(cluster: Cluster, options: Options) -> ShutdownObservation:
    """Delete the frontend pod and watch the backend's log for the game-over call."""
    backends = ready_pod_names(cluster.list_pods("app=backend"))
    frontends = ready_pod_names(cluster.list_pods("app=frontend"))
    if not backends or not frontends:
        return ShutdownObservation(error=f"ready pods: backend {backends}, frontend {frontends}")
    backend, frontend = backends[0], frontends[0]
    before = count_game_over(cluster.logs(backend))
    note(f"deleting pod {frontend}; watching {backend}'s log for up to {options.wait:.0f}s")
    cluster.delete_pod(frontend)
    counts = [before]

    def grew() -> bool:
        counts.append(count_game_over(cluster.logs(backend)))
        return counts[-1] > before

    waited = poll_until(grew, options.wait, options.poll_interval)
    replacement = wait_for_replacement(cluster, frontend, options)
    return ShutdownObservation(frontend, before, counts[-1], waited, replacement)


def wait_for_replacement(cluster: Cluster, deleted: str, options: Options) -> str:
    """Wait for a Ready frontend pod other than `deleted`; say how that went."""
    names: list[str] = []

    def replaced() -> bool:
        names[:] = [n for n in ready_pod_names(cluster.list_pods("app=frontend")) if n != deleted]
        return bool(names)

    note(f"waiting up to {options.ready_timeout:.0f}s for the replacement frontend to be Ready")
    waited = poll_until(replaced, options.ready_timeout, options.poll_interval)
    if names:
        return f"replacement {names[0]} Ready after {waited:.0f}s"
    return f"WARNING: no Ready replacement frontend after {waited:.0f}s"


def check_graceful_shutdown(cluster: Cluster, options: Options) -> CheckResult:
    try:
        seen = observe_shutdown(cluster, options)
    except KubectlError as exc:
        seen = ShutdownObservation(error=str(exc))
    return grade_graceful_shutdown(seen)


def run_checks(cluster: Cluster, options: Options) -> list[CheckResult]:
    """Every criterion in the spec's order; the destructive shutdown check runs last."""
    resources, frontend = check_resources(cluster)
    return [
        *resources,
        *check_http(cluster, options.namespace),
        grade_startup_probe(frontend),
        grade_liveness_probe(frontend),
        check_graceful_shutdown(cluster, options),
    ]


# --- output and CLI ---------------------------------------------------------------------------


def format_table(results: list[CheckResult], namespace: str) -> str:
    width = max(len("CRITERION"), *(len(r.criterion) for r in results))
    rows = [f"task-03 verify, namespace {namespace}", ""]
    rows.append(f"{'CRITERION':<{width}}  POINTS  GOT  DETAIL")
    for r in results:
        mark = "" if r.passed else "FAIL: "
        rows.append(f"{r.criterion:<{width}}  {r.points:>6}  {r.got:>3}  {mark}{r.detail}")
    got, points = sum(r.got for r in results), sum(r.points for r in results)
    score = f"{round(100 * got / points, 1):g}/100" if points else "-"
    rows.append(f"{'TOTAL':<{width}}  {points:>6}  {got:>3}  {score}")
    return "\n".join(rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", default="task-03")
    parser.add_argument("--kubectl", default="kubectl", help="kubectl command, split like a shell would")
    parser.add_argument(
        "--wait",
        type=float,
        default=15.0,
        help="seconds to wait for the game-over call after deleting the frontend pod",
    )
    parser.add_argument("--poll-interval", type=float, default=1.0, help="seconds between polls")
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=120.0,
        help="seconds to wait for the replacement frontend pod to be Ready",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    options = Options(args.namespace, args.wait, args.poll_interval, args.ready_timeout)
    cluster = Cluster(shlex.split(args.kubectl), args.namespace)
    try:
        results = run_checks(cluster, options)
    except KubectlError as exc:
        note(str(exc))
        return 2
    print(format_table(results, args.namespace))
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
