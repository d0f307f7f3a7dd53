#!/usr/bin/env bash
# The one entry point of this repository. `./manage.sh help` lists the verbs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
NAMESPACE=task-03
OVERLAY="$ROOT/kustomize/overlays/k3s"
# Debian packages the tests need; `test` and `bench` install the missing ones with apt-get as root, and
# test_package_use says what needs each.
TEST_PACKAGES=(podman runc debootstrap netavark aardvark-dns iptables ca-certificates wrk containerd prometheus
    chromium)
# The images `build` makes; the Deployments run backend:latest and frontend:latest with imagePullPolicy: Never.
IMAGES=(backend frontend)

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Create .venv and install the pinned dependencies; reinstall only when a requirements file changed.
ensure_venv() {
    local stamp="$VENV/.requirements.sha256" want
    want=$(cat "$ROOT"/requirements-dev.txt "$ROOT"/*_site/requirements.txt "$ROOT/pyproject.toml" |
        sha256sum | cut -d' ' -f1)
    if [[ -x "$PY" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return
    fi
    say "setting up $VENV"
    command -v python3 >/dev/null || die "python3 is needed (3.11 or newer)"
    [[ -x "$PY" ]] || python3 -m venv "$VENV"
    "$PY" -m pip install --quiet --disable-pip-version-check \
        -r "$ROOT/requirements-dev.txt" -r "$ROOT/backend_site/requirements.txt"
    # The repository itself, editable: podkit and testbed import from anywhere (pyproject.toml).
    "$PY" -m pip install --quiet --disable-pip-version-check --no-deps -e "$ROOT"
    echo "$want" >"$stamp"
}

# checkov gets a venv of its own: its pins clash with requirements-dev.txt.
ensure_checkov() {
    local venv="$VENV/checkov" stamp="$VENV/checkov/.requirements.sha256" want
    want=$(sha256sum "$ROOT/requirements-checkov.txt" | cut -d' ' -f1)
    [[ -x "$venv/bin/checkov" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && return
    say "setting up $venv (checkov, about 1 min)"
    [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/requirements-checkov.txt"
    echo "$want" >"$stamp"
}

# What needs each of TEST_PACKAGES: the report of the missing ones names it.
test_package_use() {
    case $1 in
        podman) echo "the images run as pods (tests/e2e, tests/manage, tests/bench, bench)" ;;
        runc | netavark | aardvark-dns | iptables) echo "podman's runtime and pod network (as for podman)" ;;
        debootstrap) echo "a stand-in python:3.12-slim where no registry answers (testbed/standin-base-image.sh)" ;;
        ca-certificates) echo "pip inside the image builds (testbed/images.py)" ;;
        wrk) echo "the benchmark's load (tests/bench, bench)" ;;
        containerd) echo "a containerd and ctr standing in for k3s's (tests/manage)" ;;
        prometheus) echo "promtool and a real Prometheus (tests/integration, tests/e2e)" ;;
        chromium) echo "the real browser the live page is tested in; Playwright drives it and downloads none (tests/integration, tests/e2e)" ;;
        *) echo "(manage.sh does not say: add it to test_package_use)" ;;
    esac
}

# Installs the missing TEST_PACKAGES with apt-get, as CI does, when root and MODE is install; otherwise, or
# without root or apt-get, only lists them with what needs each. The tests that lack a tool then skip,
# saying why, or fail under CI=true (tests/prerequisites.py).
ensure_test_tools() {
    local mode=${1:-install} missing=() pkg why
    for pkg in "${TEST_PACKAGES[@]}"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return
    if [[ $mode == install && $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
        say "installing ${missing[*]} with apt-get (for the container tests and the benchmark)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        return
    fi
    if [[ $mode != install ]]; then
        why="--no-install"
    elif [[ $EUID -ne 0 ]]; then
        why="not root"
    else
        why="no apt-get"
    fi
    say "missing Debian packages, not installed ($why); the tests that need them skip, or fail under CI=true:"
    for pkg in "${missing[@]}"; do
        printf '==>   %-16s %s\n' "$pkg" "$(test_package_use "$pkg")" >&2
    done
    say "to install them, as root: apt-get install --no-install-recommends ${missing[*]}"
}

container_cli() {
    if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
        echo docker
    elif command -v podman >/dev/null; then
        echo podman
    else
        die "neither a working docker nor podman found"
    fi
}

cmd_help() {
    cat <<EOF
usage: ./manage.sh VERB

  dev        run both services locally with Django's runserver (backend :5000, frontend :8080)
  serve      the same two under gunicorn with the container config (try SIGTERM on them)
  test [--no-install] [PYTEST ARGS]
             ruff, then every test (unit, integration, manifests, containers); non-zero on any failure.
             First it sets up .venv with pip (the checkout's own, no root needed); then, as root, it
             installs with apt-get whichever of these Debian packages are missing, for the container
             tests and the benchmark (not root, it lists them, and their tests skip or fail under CI=true):
               ${TEST_PACKAGES[*]}
             --no-install: no apt-get; list each missing package and what needs it, then run the tests
  lint       ruff check and ruff format --check only
  bench      benchmark both services (as pods where podman runs, else processes) against a bare WSGI
             ceiling with wrk; as pods, writes bench/results.json and chart.png (see bench/README.md)
  build      build the backend and frontend images, then import them into k3s where it is installed
  import     import the built images into k3s's containerd (as docker.io/library/NAME:latest)
  deploy     kubectl apply -k kustomize/overlays/k3s, then wait for both rollouts
  verify     grade the live cluster the way the course does (score table; non-zero below full marks)
  watch      [URL] [--rate N] [--timeout S]: call the frontend's /who-am-i 10 times a second (default
             http://127.0.0.1:30080, the NodePort) and print a line a second: answers by pod, failures
             by kind, p50/p99; Ctrl-C prints a summary (needs only python3; --help for more)
  logs       follow the logs of both pods
  undeploy   delete everything the overlay created
  help       this text
EOF
}

# Starts backend and frontend in the background with the given command prefix; Ctrl-C stops both.
run_pair() {
    local kind=$1 pids=()
    trap 'kill "${pids[@]}" 2>/dev/null; wait; exit 0' INT TERM
    if [[ $kind == dev ]]; then
        (cd "$ROOT/backend_site" && exec "$PY" manage.py runserver 127.0.0.1:5000) &
        pids+=($!)
        # manage.py points the frontend at the backend on 127.0.0.1:5000 (BACKEND_URL's development default).
        (cd "$ROOT/frontend_site" && exec "$PY" manage.py runserver 127.0.0.1:8080) &
        pids+=($!)
    else
        (cd "$ROOT/backend_site" && exec "$VENV/bin/gunicorn" --config gunicorn.conf.py \
            --bind 127.0.0.1:5000) &
        pids+=($!)
        (cd "$ROOT/frontend_site" && BACKEND_URL=http://127.0.0.1:5000 \
            exec "$VENV/bin/gunicorn" --config gunicorn.conf.py --bind 127.0.0.1:8080) &
        pids+=($!)
    fi
    cat >&2 <<EOF
==> backend:  http://127.0.0.1:5000/get-config  /ping  POST /game-over
==> frontend: http://127.0.0.1:8080/startup  /who-am-i  /health, and / (the live page, in a browser)
==> Ctrl-C stops both$([[ $kind == serve ]] && echo "; kill -TERM ${pids[1]} shows the frontend's graceful shutdown")
EOF
    wait
}

cmd_dev() { ensure_venv; POD_NAME=${POD_NAME:-dev-frontend} run_pair dev; }
cmd_serve() { ensure_venv; POD_NAME=${POD_NAME:-serve-frontend} run_pair serve; }

cmd_lint() {
    ensure_venv
    "$VENV/bin/ruff" check "$ROOT"
    "$VENV/bin/ruff" format --check "$ROOT"
}

# pytest runs once per Django project (each has its own settings), then once for everything else.
cmd_test() {
    local install=install
    if [[ ${1:-} == --no-install ]]; then
        install=report
        shift
    fi
    ensure_venv
    ensure_checkov
    ensure_test_tools "$install"
    cmd_lint
    local log status=0
    log=$(mktemp)
    cd "$ROOT"
    PYTHONPATH=backend_site "$PY" -m pytest tests/backend --ds=backend_site.settings "$@" | tee -a "$log" ||
        status=1
    PYTHONPATH=frontend_site "$PY" -m pytest tests/frontend --ds=frontend_site.settings "$@" |
        tee -a "$log" || status=1
    "$PY" -m pytest tests --ignore=tests/backend --ignore=tests/frontend -p no:django "$@" |
        tee -a "$log" || status=1
    total_line "$log"
    rm -f "$log"
    return $status
}

# One closing line that adds up the pytest runs: "total: N passed, N failed, N skipped".
total_line() {
    awk '/^=+ .*(passed|failed|error|skipped|no tests ran).* in [0-9.]+s/ {
            for (i = 1; i <= NF; i++) {
                word = $(i + 1); sub(/,$/, "", word)
                if (word == "passed") p += $i
                if (word == "failed" || word == "error" || word == "errors") f += $i
                if (word == "skipped") s += $i
            }
        }
        END { printf "total: %d passed, %d failed, %d skipped\n", p, f, s }' "$1"
}

cmd_bench() {
    ensure_venv
    ensure_test_tools
    # matplotlib draws bench/chart.png; only the benchmark needs it.
    "$PY" -m pip install --quiet --disable-pip-version-check -r "$ROOT/bench/requirements.txt"
    cd "$ROOT" && "$PY" -m bench "$@"
}

# What /version answers in the images: the checkout's description and commit (testbed/images.py does the same).
build_args() {
    printf -- '--build-arg\nVERSION=%s\n--build-arg\nGIT_COMMIT=%s\n' \
        "$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo dev)" \
        "$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
}

cmd_build() {
    local cli args
    cli=$(container_cli)
    mapfile -t args < <(build_args)
    say "building backend:latest and frontend:latest with $cli (${args[1]}, ${args[3]})"
    "$cli" build "${args[@]}" -t backend:latest -f "$ROOT/backend_site/Dockerfile" "$ROOT"
    "$cli" build "${args[@]}" -t frontend:latest -f "$ROOT/frontend_site/Dockerfile" "$ROOT"
    if command -v k3s >/dev/null; then
        import_images "$cli"
    else
        say "no k3s here, so the images were not imported; $(import_by_hand "$cli")"
    fi
}

cmd_import() {
    local cli
    cli=$(container_cli)
    command -v k3s >/dev/null || die "k3s not found; $(import_by_hand "$cli")"
    import_images "$cli"
}

# A pod's `image: backend:latest` is docker.io/library/backend:latest to containerd. docker's archive
# carries that name already, but podman names its builds localhost/backend:latest and its archive would
# import under that name, which no pod asks for (ErrImageNeverPull). So the archive is saved under the
# full name; tagging is a no-op for docker, and podman keeps the extra name (a short name still finds
# localhost/ first).
import_images() {
    local cli=$1 name ref
    for name in "${IMAGES[@]}"; do
        ref=docker.io/library/$name:latest
        "$cli" tag "$name:latest" "$ref" || die "no image $name:latest to import: run ./manage.sh build first"
        say "importing $ref into k3s (containerd, namespace k8s.io)"
        "$cli" save "$ref" | k3s_as_root ctr images import - || die "importing $ref into k3s failed"
    done
}

# k3s's containerd socket belongs to root: sudo only when we are not root already.
k3s_as_root() {
    if [[ $EUID -eq 0 ]]; then
        k3s "$@"
    elif command -v sudo >/dev/null; then
        sudo "$(command -v k3s)" "$@"
    else
        die "importing into k3s needs root, and there is no sudo: run ./manage.sh import as root"
    fi
}

# The by-hand import, for a machine where k3s runs.
import_by_hand() {
    local cli=$1 name ref text="import them by hand where k3s runs, as root (else put sudo before k3s):"
    for name in "${IMAGES[@]}"; do
        ref=docker.io/library/$name:latest
        text+=$'\n'"    $cli tag $name:latest $ref && $cli save $ref | k3s ctr images import -"
    done
    printf '%s' "$text"
}

cmd_deploy() {
    kubectl apply -k "$OVERLAY"
    kubectl -n "$NAMESPACE" rollout status deployment/backend --timeout=120s
    kubectl -n "$NAMESPACE" rollout status deployment/frontend --timeout=180s
}

cmd_verify() { python3 "$ROOT/tools/verify.py" --namespace "$NAMESPACE" "$@"; }

# exec: Ctrl-C reaches watch alone, which prints its summary and exits.
cmd_watch() { exec python3 "$ROOT/tools/watch.py" "$@"; }

cmd_logs() {
    kubectl -n "$NAMESPACE" logs -f --prefix --all-containers --max-log-requests 4 \
        -l 'app in (backend,frontend)'
}

cmd_undeploy() { kubectl delete -k "$OVERLAY" --ignore-not-found; }

verb=${1:-help}
shift || true
case "$verb" in
    dev | serve | test | lint | bench | build | import | deploy | verify | watch | logs | undeploy | help)
        "cmd_$verb" "$@"
        ;;
    -h | --help) cmd_help ;;
    *) cmd_help >&2; die "unknown verb: $verb" ;;
esac
