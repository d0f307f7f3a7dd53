"""The live page (`GET /`): one self-contained HTML answer that calls /who-am-i on a clock and draws who
answered, and how each failed call failed (README, "Live page").

Its script and style are in `live_page/`, read once at import and sent inline, so the page is one answer
that needs nothing from anywhere else; the Content-Security-Policy allows exactly those two by their hashes,
and lets the page call its own origin and nothing else. The page's two parameters come from the query
string: a number out of bounds is clamped, anything that is not a number is a JSON 400.
"""

import base64
import hashlib
import re
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from django.http import HttpResponse
from django.utils.cache import add_never_cache_headers

FILES = Path(__file__).with_name("live_page")
# Each call gives up after this long and is drawn as a timeout: well above an answer's worst time under load
# (p99 ~80 ms in the benchmark's CPU-limited pods), well under what a learner reads as "no answer".
CALL_TIMEOUT = 2.0  # s


class Bound(NamedTuple):
    default: float
    low: float
    high: float
    what: str


# A page left open calls at most `rate.high` times a second (and /version once a second at most), each call
# bounded by CALL_TIMEOUT, so at most rate.high x CALL_TIMEOUT calls are ever in flight from one page.
PARAMETERS = {
    "rate": Bound(10, 1, 20, "calls to /who-am-i per second"),
    "window": Bound(60, 10, 300, "seconds of calls drawn"),
}
NUMBER = re.compile(r"-?\d{1,9}(\.\d{1,9})?")  # plain decimals: no exponent, nan, inf, "1_0"


def parameters(query):
    """{"rate": ..., "window": ...} from a QueryDict: defaults, given numbers clamped to their bounds.

    ValueError, with what to send instead, for an unknown name, a name given twice, or a value that is not
    a plain decimal number (no exponent, no nan or inf)."""
    unknown = sorted(set(query) - set(PARAMETERS))
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0][:40]!r}; the page takes {' and '.join(PARAMETERS)}")
    values = {}
    for name, bound in PARAMETERS.items():
        given = query.getlist(name)
        if len(given) > 1:
            raise ValueError(f"{name} is given {len(given)} times; give it once")
        if not given:
            values[name] = bound.default
        elif NUMBER.fullmatch(given[0]):
            values[name] = min(max(float(given[0]), bound.low), bound.high)
        else:
            raise ValueError(
                f"{name} must be a number from {bound.low:g} to {bound.high:g} ({bound.what}), "
                f"got {given[0][:40]!r}"
            )
    return values


def csp_hash(text):
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def assemble():
    """The page with its style and script inline and its fixed settings filled in; (page, CSP header)."""
    style = (FILES / "live.css").read_text()
    script = (FILES / "live.js").read_text()
    page = (FILES / "index.html").read_text()
    for marker, value in {
        "@STYLE@": style,
        "@SCRIPT@": script,
        "@TIMEOUT@": f"{CALL_TIMEOUT:g}",
        **{f"@{name.upper()}_MIN@": f"{bound.low:g}" for name, bound in PARAMETERS.items()},
        **{f"@{name.upper()}_MAX@": f"{bound.high:g}" for name, bound in PARAMETERS.items()},
    }.items():
        if page.count(marker) != 1:
            raise RuntimeError(f"live_page/index.html must hold {marker} once")
        page = page.replace(marker, value)
    policy = "; ".join(
        [
            "default-src 'none'",
            f"script-src {csp_hash(script)}",
            f"style-src {csp_hash(style)}",
            "connect-src 'self'",
            "img-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return page, policy


PAGE, POLICY = assemble()


@lru_cache(maxsize=64)
def body(rate, window):
    """The page's bytes for one pair of (clamped) parameters; the default pair is nearly every request."""
    return PAGE.replace("@RATE@", f"{rate:g}").replace("@WINDOW@", f"{window:g}").encode()


def response(rate, window):
    """The page as an answer: HTML, its CSP, never cached (a reload after a rollout gets the new pod's)."""
    answer = HttpResponse(body(rate, window), content_type="text/html; charset=utf-8")
    answer["Content-Security-Policy"] = POLICY
    add_never_cache_headers(answer)
    return answer
