"""Unit tests of verify.py's pure grading functions on recorded kubectl JSON and HTTP results."""

from __future__ import annotations

import json

import pytest

from tools import verify
from tools.verify import HttpResult, ShutdownObservation

BACKEND_CODE = "BACKEND-4242"
FRONTEND_POD = "frontend-7b9f6c5d48-hx2lp"


def ok(body: dict) -> HttpResult:
    return HttpResult(200, json.dumps(body))


def liveness(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]


# --- table and helpers ------------------------------------------------------------------------


def test_points__spec_table_rows_in_order():
    """The criteria carry the spec table's points; its rows add to 105 though it says 100."""
    assert sum(verify.POINTS.values()) == 105
    assert len(verify.POINTS) == 12
    criteria = list(verify.POINTS)
    assert (criteria[0], criteria[-1]) == ("Backend Deployment", "Graceful Shutdown")


def test_count_game_over__recorded_log(backend_log):
    """Only the access-log lines with the literal `POST /game-over` are counted."""
    assert verify.count_game_over(backend_log) == 2


def test_ready_pod_names__skips_terminating_and_unready(load):
    """A pod being deleted or not Ready is not a candidate for /who-am-i or deletion."""
    pods = load("pods-frontend.json")["items"]
    terminating = json.loads(json.dumps(pods[0]))
    terminating["metadata"]["name"] = "frontend-old"
    terminating["metadata"]["deletionTimestamp"] = "2025-11-25T08:41:00Z"
    unready = json.loads(json.dumps(pods[0]))
    unready["metadata"]["name"] = "frontend-starting"
    for condition in unready["status"]["conditions"]:
        condition["status"] = "False" if condition["type"] == "Ready" else condition["status"]
    assert verify.ready_pod_names([terminating, *pods, unready]) == [FRONTEND_POD]


def test_parse_curl_output__body_and_status():
    """The last line is the status written by -w; everything before it is the body."""
    result = verify.parse_curl_output(0, '{"status": "ok"}\n200', "")
    assert result == HttpResult(200, '{"status": "ok"}')


def test_parse_curl_output__connection_refused():
    """A failed curl (exit 7, status 000) is no response, with curl's message kept."""
    result = verify.parse_curl_output(7, "\n000", "curl: (7) Failed to connect\n")
    assert result.status is None
    assert "Failed to connect" in result.error


def test_last_line__drops_client_go_noise():
    """Only kubectl's closing message is kept from a stderr full of retry logs."""
    stderr = 'E1125 memcache.go:265] "Unhandled Error"\nThe connection to the server was refused\n'
    assert verify.last_line(stderr) == "The connection to the server was refused"


def test_format_table__total_and_fail_mark():
    """The table lists every row, marks failures, and totals points and score."""
    results = [verify.passed("Backend /ping", "200"), verify.failed("Frontend /health", "HTTP 503")]
    table = verify.format_table(results, "task-03")
    assert "FAIL: HTTP 503" in table
    assert table.splitlines()[-1].split() == ["TOTAL", "20", "10", "50/100"]


def test_format_table__full_marks_scaled_to_100():
    """All 105 spec points read as 100/100 on the total line."""
    results = [verify.passed(criterion, "ok") for criterion in verify.POINTS]
    assert verify.format_table(results, "task-03").splitlines()[-1].split()[1:] == [
        "105",
        "105",
        "100/100",
    ]


def test_poll_until__stops_at_timeout():
    """A condition that never holds is polled until the timeout, with sleeps between."""
    now = [0.0]
    calls = []

    def sleep(seconds: float) -> None:
        now[0] += seconds

    waited = verify.poll_until(lambda: calls.append(1) and False, 2.5, 1, lambda: now[0], sleep)
    assert waited == 2.5
    assert len(calls) == 4


def test_poll_until__returns_as_soon_as_true():
    """Polling stops on the first call that sees the condition hold."""
    answers = iter([False, True, False])
    waited = verify.poll_until(lambda: next(answers), 15, 1, lambda: 0.0, lambda _: None)
    assert waited == 0.0
    assert next(answers) is False


# --- deployments and services -----------------------------------------------------------------


@pytest.mark.parametrize(("app", "port"), [("backend", 5000), ("frontend", 8080)])
def test_grade_deployment__recorded_is_full_marks(load, app, port):
    """Both recorded Deployments have replicas 1, the app label and the container port."""
    criterion = f"{app.capitalize()} Deployment"
    result = verify.grade_deployment(criterion, load(f"deployment-{app}.json"), app, port)
    assert result.got == 5
    assert result.detail == f"replicas 1, app: {app}, containerPort {port}, 1/1 ready"


def test_grade_deployment__missing(load):
    """No Deployment scores nothing and says so."""
    result = verify.grade_deployment("Backend Deployment", None, "backend", 5000)
    assert result.got == 0
    assert "not found" in result.detail


def test_grade_deployment__wrong_replicas_and_port(load):
    """replicas 2 and a containerPort other than 5000 are both reported."""
    deployment = load("deployment-backend.json")
    deployment["spec"]["replicas"] = 2
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = 5001
    result = verify.grade_deployment("Backend Deployment", deployment, "backend", 5000)
    assert result.got == 0
    assert "replicas is 2" in result.detail
    assert "[5001], want 5000" in result.detail


def test_grade_deployment__wrong_label(load):
    """A pod template without app: frontend fails (the course finds pods by that label)."""
    deployment = load("deployment-frontend.json")
    deployment["spec"]["template"]["metadata"]["labels"]["app"] = "web"
    result = verify.grade_deployment("Frontend Deployment", deployment, "frontend", 8080)
    assert result.got == 0
    assert "pod template labels" in result.detail


def test_grade_service__backend_clusterip(load):
    """svc-backend as recorded: ClusterIP 5000->5000."""
    service = load("service-backend.json")
    result = verify.grade_service("Backend Service", service, "svc-backend", "ClusterIP", "backend", 5000)
    assert result.passed
    assert result.detail == "ClusterIP 5000->5000"


def test_grade_service__frontend_reports_node_port(load):
    """svc-frontend as recorded passes and names its nodePort."""
    service = load("service-frontend.json")
    result = verify.grade_service("Frontend Service", service, "svc-frontend", "NodePort", "frontend", 8080)
    assert result.passed
    assert result.detail == "NodePort 8080->8080, nodePort 30080"


def test_grade_service__wrong_type(load):
    """svc-frontend as a ClusterIP fails: the rubric asks for NodePort."""
    service = load("service-frontend.json")
    service["spec"]["type"] = "ClusterIP"
    del service["spec"]["ports"][0]["nodePort"]
    result = verify.grade_service("Frontend Service", service, "svc-frontend", "NodePort", "frontend", 8080)
    assert result.got == 0
    assert result.detail == "type is ClusterIP, want NodePort"


def test_grade_service__named_target_port(load):
    """A targetPort given by name is not the rubric's literal 5000 -> 5000."""
    service = load("service-backend.json")
    service["spec"]["ports"][0]["targetPort"] = "http"
    result = verify.grade_service("Backend Service", service, "svc-backend", "ClusterIP", "backend", 5000)
    assert result.got == 0
    assert "targets 'http'" in result.detail


def test_grade_service__missing():
    """No Service scores nothing."""
    result = verify.grade_service("Backend Service", None, "svc-backend", "ClusterIP", "x", 5000)
    assert result.got == 0
    assert result.detail == "service/svc-backend not found"


# --- probes -----------------------------------------------------------------------------------


def test_grade_startup_probe__recorded(load):
    """The recorded frontend has httpGet /startup on 8080 on containers[0]."""
    result = verify.grade_startup_probe(load("deployment-frontend.json"))
    assert result.passed
    assert result.detail == "GET /startup :8080, period 2s x 30"


def test_grade_startup_probe__missing(load):
    """No startupProbe on containers[0] scores nothing."""
    deployment = load("deployment-frontend.json")
    del deployment["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
    result = verify.grade_startup_probe(deployment)
    assert result.got == 0
    assert result.detail == "containers[0] has no startupProbe"


def test_grade_startup_probe__named_port(load):
    """port: http resolves in Kubernetes, but the rubric asks for the number 8080."""
    deployment = load("deployment-frontend.json")
    containers = deployment["spec"]["template"]["spec"]["containers"]
    containers[0]["startupProbe"]["httpGet"]["port"] = "http"
    assert "port is 'http', want 8080" in verify.grade_startup_probe(deployment).detail


def test_grade_startup_probe__only_on_a_sidecar(load):
    """A correct probe on containers[1] does not count: the course reads containers[0]."""
    deployment = load("deployment-frontend.json")
    containers = deployment["spec"]["template"]["spec"]["containers"]
    sidecar = containers[0]
    containers.insert(0, {"name": "proxy", "image": "envoy", "ports": sidecar["ports"]})
    assert verify.grade_startup_probe(deployment).got == 0


def test_grade_liveness_probe__recorded(load):
    """The recorded frontend's liveness probe is /health :8080 every 5 s, 3 failures."""
    result = verify.grade_liveness_probe(load("deployment-frontend.json"))
    assert result.passed
    assert result.detail == "GET /health :8080, period 5s x 3"


def test_grade_liveness_probe__wrong_period(load):
    """periodSeconds 10 instead of 5 scores nothing."""
    deployment = load("deployment-frontend.json")
    liveness(deployment)["periodSeconds"] = 10
    result = verify.grade_liveness_probe(deployment)
    assert result.got == 0
    assert result.detail == "periodSeconds is 10, want 5"


def test_grade_liveness_probe__period_left_to_default(load):
    """A probe without periodSeconds gets Kubernetes' default of 10, which fails."""
    deployment = load("deployment-frontend.json")
    del liveness(deployment)["periodSeconds"]
    assert verify.grade_liveness_probe(deployment).detail == "periodSeconds is 10, want 5"


def test_grade_liveness_probe__wrong_path_and_threshold(load):
    """Every mismatch is listed, not just the first."""
    deployment = load("deployment-frontend.json")
    liveness(deployment)["httpGet"]["path"] = "/ping"
    liveness(deployment)["failureThreshold"] = 5
    detail = verify.grade_liveness_probe(deployment).detail
    assert detail == "path is '/ping', want '/health'; failureThreshold is 5, want 3"


def test_grade_liveness_probe__exec_probe(load):
    """An exec probe is not the httpGet probe the rubric asks for."""
    deployment = load("deployment-frontend.json")
    liveness(deployment).pop("httpGet")
    liveness(deployment)["exec"] = {"command": ["true"]}
    assert verify.grade_liveness_probe(deployment).detail == "livenessProbe is not an httpGet probe"


def test_grade_liveness_probe__no_deployment():
    """Without the frontend Deployment there is no probe to grade."""
    assert verify.grade_liveness_probe(None).got == 0


# --- HTTP -------------------------------------------------------------------------------------


def test_grade_get_config__code_and_status():
    """{code, status} with 200 is full marks and the code is read for later checks."""
    result = ok({"code": BACKEND_CODE, "status": "ready"})
    assert verify.grade_get_config(result).passed
    assert verify.backend_code(result) == BACKEND_CODE


def test_grade_get_config__missing_code():
    """A body without code fails, and there is no code to compare later."""
    result = ok({"status": "ready"})
    assert verify.grade_get_config(result).detail.startswith("missing code")
    assert verify.backend_code(result) is None


def test_grade_get_config__html_body():
    """A 200 whose body is not JSON (say, a proxy's page) fails."""
    result = HttpResult(200, "<html>hi</html>")
    assert verify.grade_get_config(result).detail == "body is not a JSON object: <html>hi</html>"


def test_grade_ping__503():
    """A non-200 /ping scores nothing and shows the status and body."""
    result = verify.grade_ping(HttpResult(503, '{"status": "down"}'))
    assert result.got == 0
    assert result.detail == 'HTTP 503: {"status": "down"}'


def test_grade_health__no_response():
    """curl never got an answer: nothing scored, curl's error kept."""
    result = verify.grade_health(HttpResult(None, error="curl: (28) Operation timed out"))
    assert result.got == 0
    assert result.detail == "no response: curl: (28) Operation timed out"


def test_grade_health__ok():
    """A 200 JSON /health is full marks."""
    assert verify.grade_health(ok({"status": "healthy"})).got == 10


def test_grade_startup__returns_backend_code():
    """/startup passes when it returns the code /get-config gave."""
    result = ok({"status": "ready", "backend_code": BACKEND_CODE})
    assert verify.grade_startup(result, BACKEND_CODE).got == 15


def test_grade_startup__other_code():
    """/startup returning another code means it did not call this backend."""
    result = ok({"status": "ready", "backend_code": "BACKEND-0001"})
    detail = verify.grade_startup(result, BACKEND_CODE).detail
    assert detail == "backend_code is 'BACKEND-0001', backend /get-config says 'BACKEND-4242'"


def test_grade_startup__backend_code_unknown():
    """When /get-config failed, /startup's code cannot be confirmed and does not score."""
    result = ok({"status": "ready", "backend_code": BACKEND_CODE})
    assert verify.grade_startup(result, None).got == 0


def test_grade_who_am_i__pod_name_and_code():
    """name is the frontend pod's name and code the backend's: full marks."""
    result = ok({"name": FRONTEND_POD, "code": BACKEND_CODE})
    graded = verify.grade_who_am_i(result, [FRONTEND_POD], BACKEND_CODE)
    assert graded.got == 15
    assert graded.detail == f"name {FRONTEND_POD}, code {BACKEND_CODE}"


def test_grade_who_am_i__wrong_pod_name():
    """A name that is not a frontend pod (e.g. POD_NAME unset) scores nothing."""
    result = ok({"name": "unknown", "code": BACKEND_CODE})
    graded = verify.grade_who_am_i(result, [FRONTEND_POD], BACKEND_CODE)
    assert graded.got == 0
    assert graded.detail == f"name is 'unknown', frontend pods are ['{FRONTEND_POD}']"


def test_grade_who_am_i__stale_code():
    """A code other than the backend's current one scores nothing."""
    result = ok({"name": FRONTEND_POD, "code": "not-initialized"})
    graded = verify.grade_who_am_i(result, [FRONTEND_POD], BACKEND_CODE)
    assert graded.got == 0
    assert "code is 'not-initialized'" in graded.detail


# --- graceful shutdown ------------------------------------------------------------------------


def test_grade_graceful_shutdown__count_grew():
    """More `POST /game-over` lines after the deletion: full marks, counts in the detail."""
    seen = ShutdownObservation(FRONTEND_POD, 2, 4, 3.2, "replacement x Ready after 9s")
    result = verify.grade_graceful_shutdown(seen)
    assert result.got == 5
    assert result.detail.startswith("'POST /game-over' in backend log: 2 -> 4 within 3s")


def test_grade_graceful_shutdown__count_not_growing():
    """The same count after the whole wait: the preStop hook never reached the backend."""
    seen = ShutdownObservation(FRONTEND_POD, 2, 2, 15.0)
    result = verify.grade_graceful_shutdown(seen)
    assert result.got == 0
    assert result.detail.endswith(f"2 -> 2 in 15s after deleting {FRONTEND_POD}")


def test_grade_graceful_shutdown__could_not_run():
    """No Ready pods to work with: nothing scored, the reason given."""
    seen = ShutdownObservation(error="ready pods: backend [], frontend []")
    assert verify.grade_graceful_shutdown(seen) == verify.failed(
        "Graceful Shutdown", "ready pods: backend [], frontend []"
    )
