"""The cluster's DNS server (CoreDNS's place): A records for the Services' names, nothing else.

It runs inside the cluster's DNS pod (`python dns_server.py RECORDS ZONE`, standard library only) and answers
over UDP from a records file, a JSON object {fully qualified name: [IPv4 address, ...]} that the Cluster
replaces atomically (write, then rename). Every query first checks whether the file was replaced (one
stat), so an answer never predates the last rename and no reload signal or timer is needed. A name under
ZONE (cluster.local) that has no record gets NXDOMAIN at once - the search-list variants a pod's `ndots:5`
asks first among them; any other name is forwarded to the nameservers of this container's resolv.conf (the
host's). A known name asked for another type (AAAA) gets an empty answer, as CoreDNS gives. No TCP: its
answers fit in a UDP packet.

`ask()` is the client side, for the host: one query, (rcode, addresses).
"""

import json
import os
import secrets
import socket
import struct
import sys
import threading

A, IN = 1, 1
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP = 0, 1, 2, 3, 4
TTL = 5  # seconds; CoreDNS's kubernetes plugin answers with ttl 5 too
UPSTREAM_TIMEOUT = 2.0


def encode_name(name):
    labels = [label for label in name.rstrip(".").split(".") if label]
    return b"".join(bytes([len(label)]) + label.encode("ascii") for label in labels) + b"\0"


def question(packet):
    """(name, qtype, end of the question) of a query's only question; names are lower case, no final dot."""
    labels, offset = [], 12
    while packet[offset]:
        length = packet[offset]
        if length & 0xC0:
            raise ValueError("compressed name in a question")
        labels.append(packet[offset + 1 : offset + 1 + length].decode("ascii").lower())
        offset += 1 + length
    qtype, _ = struct.unpack_from("!HH", packet, offset + 1)
    return ".".join(labels), qtype, offset + 5


def reply(query, end, rcode, addresses=()):
    """The answer to `query` (its question ends at `end`): authoritative, recursion available."""
    query_id, flags = struct.unpack_from("!HH", query)
    flags = 0x8000 | (flags & 0x7900) | 0x0400 | 0x0080 | rcode  # QR, opcode and RD copied, AA, RA
    header = struct.pack("!HHHHHH", query_id, flags, 1, len(addresses), 0, 0)
    answers = b"".join(
        struct.pack("!HHHIH", 0xC00C, A, IN, TTL, 4) + socket.inet_aton(address) for address in addresses
    )
    return header + query[12:end] + answers


class Records:
    """The records file, read again whenever it was replaced."""

    def __init__(self, path):
        self.path, self.version, self.names = path, None, {}

    def get(self, name):
        stat = os.stat(self.path)
        if (stat.st_ino, stat.st_mtime_ns) != self.version:
            with open(self.path) as records:
                self.names = {key.lower().rstrip("."): value for key, value in json.load(records).items()}
            self.version = (stat.st_ino, stat.st_mtime_ns)
        return self.names.get(name)


def upstream_nameservers(resolv_conf="/etc/resolv.conf"):
    with open(resolv_conf) as lines:
        return [line.split()[1] for line in lines if line.startswith("nameserver") and len(line.split()) > 1]


def forward(sock, query, client, end, upstreams):
    """Relay a query for a name outside the cluster to the host's nameservers (in a thread of its own)."""
    for upstream in upstreams:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as relay:
            relay.settimeout(UPSTREAM_TIMEOUT)
            try:
                relay.sendto(query, (upstream, 53))
                sock.sendto(relay.recv(4096), client)
                return
            except OSError:
                continue
    sock.sendto(reply(query, end, SERVFAIL), client)


def answer(sock, query, client, records, zone, upstreams):
    try:
        name, qtype, end = question(query)
    except (IndexError, ValueError, UnicodeDecodeError, struct.error):
        sock.sendto(query[:2] + struct.pack("!HHHHH", 0x8000 | FORMERR, 0, 0, 0, 0), client)
        return
    if (query[2] & 0x78) or struct.unpack_from("!H", query, 4)[0] != 1:
        sock.sendto(reply(query, end, NOTIMP), client)  # only QUERY, with one question
    elif name == zone or name.endswith("." + zone):
        addresses = records.get(name)
        if addresses is None:
            sock.sendto(reply(query, end, NXDOMAIN), client)
        else:
            sock.sendto(reply(query, end, NOERROR, addresses if qtype == A else ()), client)
    else:
        threading.Thread(target=forward, args=(sock, query, client, end, upstreams), daemon=True).start()


def serve(records_path, zone, port=53):
    records, upstreams = Records(records_path), upstream_nameservers()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", port))  # noqa: S104 - the pod's own network namespace
        print(f"answering {zone} from {records_path}; forwarding the rest to {upstreams}", flush=True)
        while True:
            query, client = sock.recvfrom(4096)
            try:
                answer(sock, query, client, records, zone, upstreams)
            except Exception as exc:  # one bad packet or a half-written file must not stop the server
                print(f"no answer to {client}: {exc!r}", file=sys.stderr, flush=True)


def ask(server, name, timeout=1.0, port=53):
    """One A query to `server`: (rcode, [addresses]); raises OSError (timeout) when nothing answers.
    It reads the answers as this server writes them (a name pointer each), not any server's."""
    query_id = secrets.randbelow(1 << 16)
    header = struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0)
    query = header + encode_name(name) + struct.pack("!HH", A, IN)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(query, (server, port))
        while True:
            packet = sock.recv(4096)
            if struct.unpack_from("!H", packet)[0] == query_id:
                break
    rcode, count = struct.unpack_from("!H", packet, 2)[0] & 0xF, struct.unpack_from("!H", packet, 6)[0]
    offset, addresses = len(query), []
    for _ in range(count):  # every answer of ours: a 2-byte name pointer, then type, class, ttl, length
        rtype, _, _, length = struct.unpack_from("!HHIH", packet, offset + 2)
        if rtype == A:
            addresses.append(socket.inet_ntoa(packet[offset + 12 : offset + 12 + length]))
        offset += 12 + length
    return rcode, addresses


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2].lower().strip("."))
