"""What /proc says about the processes on this machine: parents, CPU time, memory fields, cgroups."""

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def stat_fields(pid):
    """The fields of /proc/<pid>/stat after "(comm)": state, ppid, ...; None when the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def parents():
    """pid -> (ppid, state) of every process now; one that exits meanwhile is left out."""
    table = {}
    for entry in Path("/proc").glob("[0-9]*"):
        fields = stat_fields(entry.name)
        if fields is not None:
            table[int(entry.name)] = (int(fields[1]), fields[0])
    return table


def children(pid):
    """The live (not zombie) direct children of `pid`."""
    return {child for child, (ppid, state) in parents().items() if ppid == pid and state != "Z"}


def descendants(pid):
    """Pids of all processes below `pid` (no /proc/<pid>/task/*/children on this kernel)."""
    below = {}
    for child, (ppid, _) in parents().items():
        below.setdefault(ppid, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in below.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cpu_seconds(pid):
    """utime + stime of one process, all its threads (0 when it is gone)."""
    fields = stat_fields(pid)
    # state is field 3 of stat(5), so utime (14) and stime (15) are at 11 and 12 here.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS if fields else 0.0


def field(pid, file, name):
    """The value of the `name: value ...` line of /proc/<pid>/<file> (status, smaps_rollup), as a string;
    None when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(name + ":"):
                return line.split()[1]
    except OSError:
        pass
    return None


def kib(pid, file, name):
    """A `name: N kB` value of /proc/<pid>/<file>, in KiB; 0 when the process is gone."""
    value = field(pid, file, name)
    return int(value) if value is not None else 0


def signal_pending(pid, signum):
    """Whether `signum`, sent to the process, waits for it to run again (a stopped process)."""
    pending = field(pid, "status", "ShdPnd")
    return pending is not None and bool(int(pending, 16) & 1 << (signum - 1))


def cgroup_paths(pid):
    """controller -> the process's cgroup, from /proc/<pid>/cgroup; "" is the unified (v2) hierarchy."""
    paths = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        paths |= dict.fromkeys(controllers.split(","), path)
    return paths
