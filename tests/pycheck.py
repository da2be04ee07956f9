"""pycheck.py - what the Python tests share: check() records a failure
with its description on stderr and carries on; report() prints
"N passed, M failed" and exits non-zero when anything failed (the
C tests' check.h, for the scripts in tests/server and tests/cli);
run_script() runs a script of scripts/ on a text given as a file."""
import os
import subprocess
import sys
import tempfile

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


def run_script(script, text, *args, suffix=".csv"):
    """`python3 script FILE args...` with text in a temporary FILE; the
    completed process, output captured as text."""
    with tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False) as f:
        f.write(text)
    try:
        return subprocess.run([sys.executable, script, f.name, *args], capture_output=True,
                              text=True)
    finally:
        os.unlink(f.name)
