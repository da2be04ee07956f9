"""serveproc.py - a `m40-llm serve` process for the server tests that drive
it with client packages (test_server_clients, test_structured,
test_chat_page): started on a free port (--port 0, the port read from the
start line on stderr), stopped with SIGTERM. test_server.py has its own,
richer Server (hosts, environment, raw HTTP)."""
import re
import subprocess
import sys
import tempfile
import time


def start(binary, model, *extra, seconds=60):
    """Starts `binary serve -m model --device cpu --port 0 extra...`;
    returns (proc, port). proc.err_file holds the server's stderr. Raises
    with that stderr when the server exits or does not listen within
    `seconds`."""
    err = tempfile.TemporaryFile()
    proc = subprocess.Popen([binary, "serve", "-m", model, "--device", "cpu", "--port", "0",
                             *extra], stdout=subprocess.DEVNULL, stderr=err)
    proc.err_file = err
    deadline = time.time() + seconds
    while time.time() < deadline and proc.poll() is None:
        err.seek(0)
        m = re.search(rb"http://127\.0\.0\.1:(\d+)", err.read())
        if m:
            return proc, int(m.group(1))
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    err.seek(0)
    raise RuntimeError("server did not start: " + err.read().decode(errors="replace"))


def stop(proc, show_log=False):
    """SIGTERM, then the exit status (None if it had to be killed after
    30 s); with show_log, the last lines of its stderr first."""
    if show_log:
        proc.err_file.seek(0)
        tail = proc.err_file.read().decode(errors="replace").splitlines()[-30:]
        print("server stderr (last lines):\n" + "\n".join(tail), file=sys.stderr)
    proc.terminate()
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return None
