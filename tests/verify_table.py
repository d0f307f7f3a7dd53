"""Reads the score table tools/verify.py prints, for the tests that run it (tests/tools, tests/e2e)."""

from tools import verify


def rows(output: str) -> dict[str, list[str]]:
    """Score-table rows by criterion: [points, got, detail]; "TOTAL" gives [points, got, score]."""
    table = {}
    for line in output.splitlines():
        for criterion in (*verify.POINTS, "TOTAL"):
            if line.startswith(criterion + "  "):
                table[criterion] = line[len(criterion) :].split(maxsplit=2)
    return table
