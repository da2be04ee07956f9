#!/usr/bin/env python3
"""test_chat.py BINARY - `m40-llm chat` in a terminal (a pty), as a user types.

- The first reply is the text `generate --chat` gives for the same message
  and settings (greedy): the same template, the same tokens.
- A second message gets a reply; /reset and /system clear the history;
  an unknown /command prints the commands.
- Ctrl-C during a long reply stops the reply, not the program: the prompt
  comes back and the chat goes on; Ctrl-C at the prompt does not quit.
- /exit and Ctrl-D (end of input) quit with status 0.
Prints "N passed, M failed"; exits non-zero on any failure.
"""
import os
import pty
import re
import select
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pycheck import check, report  # noqa: E402

BIN = sys.argv[1]


class Chat:
    def __init__(self, *args):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execv(BIN, [BIN, "chat", *args])
        self.buf = b""

    def read_until(self, pattern, timeout=60):
        """Everything read up to and including the first match of pattern
        after what earlier calls consumed."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = re.search(pattern, self.buf)
            if m:
                out, self.buf = self.buf[:m.end()], self.buf[m.end():]
                return out
            r, _, _ = select.select([self.fd], [], [], 0.1)
            if r:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:
                    break
                if not data:
                    break
                self.buf += data
        raise TimeoutError("no %r in %r" % (pattern, self.buf[-400:]))

    def send(self, text):
        os.write(self.fd, text.encode())

    def wait(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            try:  # keep draining so the child never blocks on a full pty
                r, _, _ = select.select([self.fd], [], [], 0.1)
                if r:
                    os.read(self.fd, 4096)
            except OSError:
                time.sleep(0.05)
        os.kill(self.pid, 9)
        return None


PROMPT = rb"(?:^|\n)> "


def main():
    with tempfile.TemporaryDirectory() as d:
        model = os.path.join(d, "tiny.gguf")
        subprocess.run([BIN, "synth", "--shape", "tiny", "--type", "q8_0", "--seed", "3", "-o",
                        model], check=True, stdout=subprocess.DEVNULL)
        common = ["-m", model, "--device", "cpu", "--temp", "0", "--ignore-eos"]
        ref = subprocess.run([BIN, "generate", *common, "-n", "10", "--chat", "-p", "hello there"],
                             capture_output=True, check=True).stdout.decode().rstrip("\n")

        c = Chat(*common, "-n", "10")
        c.read_until(PROMPT)
        c.send("hello there\n")
        out = c.read_until(PROMPT).decode(errors="replace").replace("\r\n", "\n")
        reply = out.split("hello there\n", 1)[-1].rsplit("\n", 1)[0]  # after the echo
        check(reply.rstrip("\n") == ref, "first reply == generate --chat: %r vs %r" % (reply, ref))
        c.send("and again\n")
        out = c.read_until(PROMPT).decode(errors="replace")
        check(len(out.strip()) > len("and again"), "a second reply: %r" % out)
        c.send("/reset\n")
        check(b"(history cleared)" in c.read_until(PROMPT), "/reset")
        c.send("/system be brief\n")
        check(b"(history cleared)" in c.read_until(PROMPT), "/system")
        c.send("/what\n")
        check(b"commands: /reset" in c.read_until(PROMPT), "an unknown command")
        c.send("/exit\n")
        check(c.wait() == 0, "/exit quits with 0")

        # a reply long enough to interrupt: until the 4096-token context is full
        c = Chat(*common, "-n", "-1", "-c", "4096")
        c.read_until(PROMPT)
        c.send("go on and on\n")
        c.read_until(rb"go on and on\r?\n.{8}", timeout=60)  # the reply has begun
        c.send("\x03")  # Ctrl-C
        out = c.read_until(PROMPT, timeout=30)
        check(b"(stopped)" in out, "Ctrl-C stops the reply: %r" % out[-200:])
        c.send("\x03")  # at the prompt: the chat goes on
        c.read_until(rb"Ctrl-D or /exit quits")
        c.send("still here?\n")
        c.read_until(rb"still here\?\r?\n")
        c.send("\x03")
        c.read_until(PROMPT, timeout=30)
        c.send("\x04")  # Ctrl-D at the prompt: end of input
        check(c.wait() == 0, "Ctrl-D quits with 0")

        p = subprocess.run([BIN, "chat", "-m", model, "-p", "x"], capture_output=True)
        check(p.returncode == 2 and b"generate --chat" in p.stderr, "chat -p is a usage error")
    report()


if __name__ == "__main__":
    main()
