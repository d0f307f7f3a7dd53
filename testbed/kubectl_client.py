"""The `kubectl` that testbed.kubectl puts on PATH: forwards its argv to the test's server, prints the answer.

    python -S kubectl_client.py SOCKET ARGS...

Standard library only (it runs with -S, about twenty times per verify run). stdin is not forwarded: none
of the calls the server answers reads it (`exec` without -i).
"""

import json
import socket
import sys


def main():
    path, argv = sys.argv[1], sys.argv[2:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(path)
        conn.sendall(json.dumps(argv).encode())
        conn.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    answer = json.loads(b"".join(chunks))
    sys.stdout.write(answer["stdout"])
    sys.stderr.write(answer["stderr"])
    return answer["code"]


if __name__ == "__main__":
    sys.exit(main())
