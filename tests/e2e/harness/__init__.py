"""The e2e harness: the real images, run from the rendered k3s overlay the way a kubelet would run them.

podman.py    the podman CLI with this machine's flags (runc, rlimits) and session labels
images.py    builds backend:latest and frontend:latest from the real Dockerfiles (stand-in base image)
podspec.py   reads the overlay: a Deployment's pod template -> podman run arguments, field by field
kubelet.py   one pod: container lifecycle, probes, restarts, deletion (preStop, SIGTERM, SIGKILL)
cluster.py   a podman network as the pod network; Services as DNS aliases
traffic.py   HTTP from the host to published 127.0.0.1 ports: probes, Service clients, steady load
"""
