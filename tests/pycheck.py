"""pycheck.py - what the Python tests share: check() records a failure
with its description on stderr and carries on; report() prints
"N passed, M failed" and exits non-zero when anything failed (the
C tests' check.h, for the scripts in tests/server and tests/cli)."""
import sys

_counts = {"passed": 0, "failed": 0}


def check(cond, what):
    if cond:
        _counts["passed"] += 1
    else:
        _counts["failed"] += 1
        print("FAIL: " + what, file=sys.stderr)


def failures():
    return _counts["failed"]


def report():
    print(f"{_counts['passed']} passed, {_counts['failed']} failed")
    sys.exit(1 if _counts["failed"] else 0)
