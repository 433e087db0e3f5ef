#!/usr/bin/env python3
"""Runs a command in a pseudo-terminal of a given size, as a person at a terminal would, and
prints everything the terminal showed (stdout and stderr, as one screen) on stdout; exits with the
command's exit code. The terminal tests use it (tests/it/e2e/terminal.rs).

    pty_run.py [--cols 80] [--rows 50] [--answer TEXT] [--timeout S] -- COMMAND ARGS...

--answer types TEXT and Enter once the command has printed something that ends in ": " (a
prompt); without it, stdin is the terminal and nothing is typed. --interrupt-on TEXT presses
Ctrl-C once TEXT has been shown; --eof-on TEXT presses Ctrl-D once TEXT has been shown.
"""
import argparse
import errno
import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cols", type=int, default=80)
    ap.add_argument("--rows", type=int, default=50)
    ap.add_argument("--answer")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--interrupt-on")
    ap.add_argument("--eof-on")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.command[1:] if a.command and a.command[0] == "--" else a.command
    if not cmd:
        ap.error("no command")
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(cmd[0], cmd)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", a.rows, a.cols, 0, 0))
    os.kill(pid, signal.SIGWINCH)
    seen = b""
    answered = False
    interrupted = False
    ended = False
    deadline = time.monotonic() + a.timeout
    while True:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            sys.stdout.buffer.write(seen)
            print(f"\npty_run: timed out after {a.timeout} s", file=sys.stderr)
            return 124
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError as e:
                if e.errno == errno.EIO:  # the child closed the terminal
                    break
                raise
            if not chunk:
                break
            seen += chunk
            if a.answer is not None and not answered and seen.rstrip(b" ").endswith(b":"):
                os.write(fd, a.answer.encode() + b"\r")
                answered = True
            if a.interrupt_on and not interrupted and a.interrupt_on.encode() in seen:
                os.write(fd, b"\x03")
                interrupted = True
            if a.eof_on and not ended and a.eof_on.encode() in seen:
                os.write(fd, b"\x04")
                ended = True
    _, status = os.waitpid(pid, 0)
    sys.stdout.buffer.write(seen)
    sys.stdout.flush()
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
