#!/usr/bin/env python3
"""Boots capOS with its terminal on a pseudo-terminal and types into it as a
person would (pexpect), while the kernel log goes to a file.

    terminal_run.py --log FILE --timeout SECONDS --scenario NAME
                    [--mark REGEX]... -- qemu-system-x86_64 ARGS...

COM1 (the kernel log and the Console capability) is written to FILE; COM2,
the terminal, is QEMU's stdio, driven through pexpect (its transcript goes
to FILE.term). Runs the named scenario, then waits for QEMU to exit. Prints
one line in the format of qemu_run.py:

    status=<QEMU exit code | timeout | scenario-failed> seconds=<wall time> mark<N>=<seconds|->

A failed expectation ends the run at once (QEMU is killed) and is described
on stderr with the last terminal output.
"""
import argparse
import re
import sys
import threading
import time

import pexpect


class Failed(Exception):
    """A scenario expectation did not hold."""


class Terminal:
    """The terminal side of the test: send bytes, expect output."""

    def __init__(self, child: pexpect.spawn, timeout: float, log: str = ""):
        self.child = child
        self.timeout = timeout
        self.log = log

    def wait_log(self, pattern: bytes, what: str) -> None:
        """Waits until the kernel log (COM1) holds `pattern`: an event of
        a process that writes only to the console."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            with open(self.log, "rb") as f:
                if re.search(pattern, f.read()):
                    return
            time.sleep(0.05)
        raise Failed(f"{what}: timed out waiting for {pattern!r} in the kernel log")

    def send(self, data: bytes) -> None:
        self.child.send(data)

    def expect(self, pattern: bytes, what: str) -> bytes:
        """Waits for `pattern` (a regex; pexpect compiles it with DOTALL, so
        `.` crosses lines: use `[^\\n]` within one); returns what came
        before it."""
        try:
            self.child.expect(pattern, timeout=self.timeout)
        except (pexpect.TIMEOUT, pexpect.EOF) as e:
            kind = "timed out" if isinstance(e, pexpect.TIMEOUT) else "terminal closed"
            tail = (self.child.before or b"")[-400:]
            raise Failed(f"{what}: {kind} waiting for {pattern!r}; last output: {tail!r}")
        return self.child.before

    def line(self, typed: bytes, reply: bytes, what: str) -> bytes:
        """At the prompt, types `typed` and waits for `reply`."""
        self.expect(rb"> ", f"{what}: prompt")
        self.send(typed)
        return self.expect(reply, what)


def terminal_test(t: Terminal) -> None:
    """The `terminal-test` service's commands, as manifests/terminal.capnp
    starts it."""
    t.expect(rb"terminal-test: ready", "start")
    before = t.line("hello wörld\r".encode(), rb'line complete 12 "hello w\xc3\xb6rld"', "UTF-8 line")
    if "hello wörld".encode() not in before:
        raise Failed(f"the line was not echoed as typed: {before!r}")
    echo = t.line("ab€\x7fc\r".encode(), rb'line complete 3 "abc"', "backspace over a 3-byte character")
    if b"\x08 \x08" not in echo:
        raise Failed(f"backspace was not echoed as an erase: {echo!r}")
    t.line(b"junk\x15ok\r", rb'line complete 2 "ok"', "Ctrl-U")
    # An arrow key cut into three writes (three interrupts at least as far
    # as the sender can make it): ignored in line mode, nothing lost.
    t.expect(rb"> ", "split escape: prompt")
    for piece in (b"x\x1b", b"[", b"Dy", b"\r"):
        t.send(piece)
        time.sleep(0.05)
    t.expect(rb'line complete 2 "xy"', "an escape sequence split across writes")
    t.line(b"abc\x03", rb'\^C\r+\nline interrupted 0 ""', "Ctrl-C")
    t.line(b"\x04", rb'line endOfInput 0 ""\r+\nterminal-test: end of input', "Ctrl-D on an empty line")
    t.line(b"keys 5\r", rb"reading 5 keys", "key reads")
    t.send(b"\x1b[A" + "é".encode() + b"\x18\t\x1b[3~")
    t.expect(rb"key up\r+\nkey char \xc3\xa9\r+\nkey ctrl x\r+\nkey tab\r+\nkey delete\r+\n", "five keys")
    t.line(b"hidden\r", rb"password: ", "hidden read")
    t.send(b"hunter2\r")
    between = t.expect(rb"secret complete 7 bytes, matches true", "hidden read result")
    if b"hunter2" in between:
        raise Failed(f"a hidden read echoed the password: {between!r}")
    t.line(b"typeahead\r", rb"typeahead: type now", "type-ahead")
    t.send(b"early\r")
    between = t.expect(rb'typeahead complete "early"', "type-ahead read")
    if b"early" in between:
        raise Failed(f"type-ahead was echoed although the read that took it is hidden: {between!r}")
    t.line(b"scrub\r", rb"scrub: type now", "scrub")
    t.send(b"stale\r")
    t.expect(rb"scrub: a read was waiting: false; read now", "scrub: cancelRead")
    t.send(b"fresh\r")
    t.expect(rb'scrub complete "fresh"', "scrub: what was typed before cancelRead is gone")
    t.line(
        b"cancel\r",
        rb"cancel: second read refused \(a read is already waiting on this terminal\); "
        rb"cancelRead true; first read cancelled 0 bytes",
        "cancel",
    )
    # A 100 KB line: bounded, reported truncated, and the terminal works on.
    t.line(b"big\r", rb"big: type a long line", "long line")
    for _ in range(100):
        t.send(b"y" * 1024)
    t.send(b"\r")
    t.expect(rb'line truncated 4096 "y{16}\.\.\."', "a 100 KB line")
    t.line(b"after\r", rb'line complete 5 "after"', "after the long line")
    # Binary garbage (every byte value, the dump key among them) and a NUL
    # flood: whatever lines they make, the next line is read intact.
    t.expect(rb"> ", "garbage: prompt")
    t.send(bytes(range(256)) * 4 + b"\x00" * 4096 + b"\r")
    t.send(b"\x15sync\r")
    t.expect(rb'line complete 4 "sync"', "a line after binary garbage and a NUL flood")
    t.line(b"exit\r", rb"terminal-test: bye", "exit")


def shell(t: Terminal) -> None:
    """The capability shell as `make run` boots it (manifests/system.capnp)."""
    prompt = rb"capos> "
    t.expect(rb"capOS shell\. `help` lists the commands", "banner")

    def cmd(typed: bytes, reply: bytes, what: str) -> bytes:
        t.expect(prompt, f"{what}: prompt")
        t.send(typed)
        return t.expect(reply, what)

    # First boot: the operator has no password; `setup` sets a volatile one
    # and logs in.
    cmd(b'run "hello" with { stdio: @stdio }\r',
        rb'! exception: failed: "hello" is not on the launch allowlist of profile anonymous', "anonymous launches nothing")
    cmd(b"setup\r", rb"Setting the password of account operator\.", "setup")
    t.expect(rb"new password: ", "setup asks")
    t.send(b"first boot\r")
    t.expect(rb"again: ", "setup asks again")
    t.send(b"first boot\r")
    before = t.expect(rb"Logged in as operator \(profile operator\)\. Bundle: systemInfo, echo, audit\.", "setup logs in")
    if b"first boot" in before:
        raise Failed(f"setup echoed the password: {before!r}")
    t.expect(rb"The password is volatile", "setup says it is volatile")
    cmd(b"logout\r", rb"Logged out", "logout after setup")
    cmd(b"setup\r", rb"! setup is only for the first boot", "setup refused once a password exists")
    cmd(b"login operator\r", rb"password: ", "login with the password setup set")
    t.send(b"first boot\r")
    t.expect(rb"Logged in as operator", "the volatile password works")
    cmd(b"help\r", rb"(?s)Commands:.*protocol <cap> <Interface>.*Calls:.*Keys:", "help")
    cmd(b"help run\r", rb'run "binary" \[with \{ name: source, \.\.\. \}\]', "help run")
    cmd(b"help frobnicate\r", rb"! no command `frobnicate`; the commands: help, caps", "help of an unknown command")
    caps = cmd(b"caps\r", rb"audit +ClientEndpoint \(AuditLog\)", "caps")
    for want in (rb"terminal +TerminalSession", rb"timer +Timer", rb"echo +ClientEndpoint \(Echo\)",
                 rb"registryControl +ClientEndpoint", rb"session operator bundle:",
                 rb"registry +ClientEndpoint \(SchemaRegistry\)", rb"null +Null"):
        if not re.search(want, caps):
            raise Failed(f"caps lacks {want!r}: {caps!r}")
    cmd(b"inspect timer\r", rb"(?s)timer: Timer \(0xa06e7a0d0d2e312e\).*now @0 \(\) -> \(nanos :UInt64\).*sleep @1 \(nanos :UInt64\) -> \(\)", "inspect timer")
    cmd(b"inspect echo\r", rb"echo @0 \(data :Data\) -> \(data :Data\)", "inspect an endpoint client")
    cmd(b"timer.now()\r", rb"\(nanos = [0-9]+\)", "a typed call on a kernel capability")
    cmd(b'echo.echo(data: "hi")\r', rb'\(data = "hi"\)', "a typed call through an endpoint")
    cmd(b'echo.echo(data: 42)\r', rb"! [^\n]*`data` [^\n]*Data[^\n]*an integer", "a wrong argument type")
    cmd(b"echo.ech()\r", rb"! [^\n]*no method `ech`[^\n]*echo, fail, quit, inspectCaps, useTimer", "an unknown method")
    cmd(b"nosuch.x()\r", rb"! no capability named `nosuch`; `caps` lists what the shell holds", "an unknown capability")
    cmd(b"echo.fail()\r", rb"! exception: failed: echo method 1 always fails", "an application exception")
    cmd(b'null.echoLater(data: "later", nanos: 1000000)\r', rb'\(data = "later"\)', "a call that completes later")
    cmd(b"timer.now(\r", rb"\^\r+\n! ", "a line that does not parse")
    # History: Up recalls the last line; Ctrl-C throws a half-typed line away.
    t.expect(prompt, "history: prompt")
    t.send(b"\x1b[A")
    t.expect(rb"timer\.now\(", "Up recalls the last line")
    t.send(b"\x15junk\x03")
    t.expect(rb"junk(\x1b\[K)?\^C\r+\n", "Ctrl-C drops the line")
    # Line editing: type, move left, insert, Home, Delete.
    t.expect(prompt, "editing: prompt")
    t.send(b"xtimer.nw()" + b"\x1b[D\x1b[D\x1b[Do" + b"\x1b[H\x1b[3~" + b"\r")
    t.expect(rb"\(nanos = [0-9]+\)", "an edited line")
    # Tab completes a method name.
    t.expect(prompt, "completion: prompt")
    t.send(b"echo.ec\t")
    t.expect(rb"echo\.echo\(", "Tab completes a method")
    t.send(b'data: "tab")\r')
    t.expect(rb'\(data = "tab"\)', "the completed call")
    cmd(b"protocol registryControl ServiceControl\r", rb"registryControl speaks ServiceControl", "protocol")
    # Programs: run in the foreground with exactly the caps named, StdIO
    # served on the terminal, the exit code reported.
    cmd(b'run "hello" with { stdio: @stdio, echo: @echo }\r',
        rb"hello from pid [0-9]+, holding 2 capabilities", "run a program")
    t.expect(rb"what is your name\? ", "the program asks")
    t.send(b"Ada\r")
    t.expect(rb'hello, Ada!\r+\nthe echo service says "Ada"\r+\n\[pid [0-9]+ exited with code 0\]',
             "the program's answer and exit")
    cmd(b'run "hello" with { stdio: @stdio }\r', rb"holding 1 capabilities", "run with fewer caps")
    t.expect(rb"what is your name\? ", "the program asks again")
    t.send(b"fail\r")
    t.expect(rb"hello, fail!\r+\n\[pid [0-9]+ exited with code 3\]", "an exit code")
    # Typing while the program prints: what was typed waits for its read.
    cmd(b'run "hello" with { stdio: @stdio, timer: @timer }\r', rb"holding 2 capabilities", "a program that prints")
    t.expect(rb"tick 1", "the first tick")
    t.send(b"Grace\r")
    t.expect(rb"(?s)tick 3.*hello, Grace!\r+\n\[pid [0-9]+ exited with code 0\]", "typed while it printed")
    cmd(b'run "hostile"\r', rb'! exception: failed: "hostile" is not on the launch allowlist of profile operator',
        "a binary not on the allowlist")
    cmd(b'run "hello" with { x: @nosuch }\r', rb"! no capability named `nosuch`", "a grant the shell does not hold")
    cmd(b'run "hello" with { stdio: @stdio }\r', rb"what is your name\? ", "Ctrl-C stops a program")
    t.send(b"\x03")
    t.expect(rb"\^C(\r+\n)+\[pid [0-9]+ was killed\]", "the stopped program")
    cmd(b'spawn "hello" with { timer: @timer } -> $h\r', rb"\[pid ([0-9]+)\] hello started; \$h is its handle",
        "spawn")
    cmd(b"jobs\r", rb"\$h +pid [0-9]+ +hello +running", "jobs")
    cmd(b"wait $h\r", rb"", "wait")
    t.send(b"\x03")
    t.expect(rb"\(stopped waiting; \$h still runs\)", "Ctrl-C stops waiting")
    cmd(b"kill $h\r", rb"\[pid [0-9]+\] hello killed", "kill")
    cmd(b"wait $h\r", rb"\[pid [0-9]+ was killed\]", "wait after kill")
    # A 100 KB line: bounded, and the shell works on.
    t.expect(prompt, "long line: prompt")
    t.send(b"y" * (100 * 1024))
    t.send(b"\x15timer.now()\r")
    t.expect(rb"\(nanos = [0-9]+\)", "after a 100 KB line")
    # Binary garbage and a NUL flood at the prompt (Ctrl-D, which would
    # leave, left out): whatever lines they make, the shell reads on.
    t.expect(prompt, "garbage: prompt")
    t.send(bytes(b for b in range(256) if b != 0x04) * 2 + b"\x00" * 2048 + b"\r")
    t.send(b"\x15timer.now()\r")
    t.expect(rb"\(nanos = [0-9]+\)", "after binary garbage and a NUL flood")
    cmd(b"echo.quit()\r", rb"\(\)", "stopping the echo server")
    cmd(b"registryControl.stop()\r", rb"\(\)", "stopping the registry")
    cmd(b"exit\r", rb"exit", "exit")


def shell_bench(t: Terminal) -> None:
    """`make bench`'s terminal figures: five keystrokes typed one at a
    time, each waited for its echo, then five `timer.now()` lines, each
    waited for its result and the next prompt (the kernel logs the delays
    of the writes after each burst of input, at debug level)."""
    prompt = rb"capos> "
    t.expect(rb"capOS shell\.", "banner")
    # A quiet system: the credential store's start-up checks (Argon2id,
    # some 265 million instructions) are over before the first key.
    t.wait_log(rb"authd: serving CredentialStore", "the credential store is ready")
    t.expect(prompt, "prompt")
    for _ in range(5):
        t.send(b"x")
        t.expect(rb"x", "a keystroke's echo")
    t.send(b"\x15")
    t.expect(rb"\x1b\[K", "the line erased")
    for _ in range(5):
        t.send(b"timer.now()\r")
        t.expect(rb"\(nanos = [0-9]+\)", "a typed call's result")
        t.expect(prompt, "the next prompt")
    # Leaving the shell ends the system (the manifest says so).
    t.send(b"exit\r")
    t.expect(rb"exit", "shutting down")


OPERATOR_PASSWORD = b"correct horse battery"
GUEST_PASSWORD = b"guest pass"


def login(t: Terminal) -> None:
    """Sessions as manifests/login.capnp boots them: an anonymous shell, a
    refused launch, wrong passwords (refused, the second answered later), the
    right one, the operator's bundle, a child in the session, logout revoking
    the bundle in a running child, the audit log, a guest, hostile input."""
    anon = rb"anonymous@capos> "
    oper = rb"operator@capos> "
    t.expect(rb"capOS shell\. `help` lists the commands", "banner")

    def cmd(prompt: bytes, typed: bytes, reply: bytes, what: str) -> bytes:
        t.expect(prompt, f"{what}: prompt")
        t.send(typed)
        return t.expect(reply, what)

    def password(secret: bytes, reply: bytes, what: str) -> tuple[bytes, float]:
        t.expect(rb"password: ", f"{what}: password prompt")
        start = time.monotonic()
        t.send(secret + b"\r")
        before = t.expect(reply, what)
        if secret and secret[:8] in before:
            raise Failed(f"{what}: the password was echoed: {before!r}")
        return before, time.monotonic() - start

    cmd(anon, b"caps\r", rb"session anonymous bundle: \(none\)", "no bundle while anonymous")
    cmd(anon, b"session\r", rb"session: principal \(none\), profile anonymous\r+\nbundle: \(none\)\r+\nmay launch: \(nothing\)",
        "the anonymous session")
    cmd(anon, b'run "hello" with { stdio: @stdio }\r',
        rb'! exception: failed: "hello" is not on the launch allowlist of profile anonymous', "a launch refused")
    cmd(anon, b"sessionManager.anonymous()\r", rb"! exception: failed: a session cannot open anonymous sessions",
        "a shell cannot mint sessions")
    # Timed attempts start once the credential store serves (it times two
    # checks of its own at start).
    t.wait_log(rb"authd: serving CredentialStore", "the credential store is ready")
    cmd(anon, b"login operator\r", rb"", "login with a wrong password")
    _, first = password(b"wrong one", rb"login incorrect\r+\n", "a wrong password")
    cmd(anon, b"login operator\r", rb"", "a second wrong password")
    _, second = password(b"wrong two", rb"login incorrect\r+\n", "a second wrong password")
    if second < first + 0.25:
        raise Failed(f"the second failure was not slower: {first:.2f} s then {second:.2f} s")
    cmd(anon, b"login\r", rb"account: ", "login asking for the account")
    t.send(b"operator\r")
    password(OPERATOR_PASSWORD, rb"Logged in as operator \(profile operator\)\. Bundle: systemInfo, echo, audit\.",
             "the right password")
    t.expect(rb"This is the login proof's capOS\.", "the manifest's message of the day")
    cmd(oper, b"caps\r", rb"session operator bundle:\r+\n(.*?)operator@", "the operator's bundle")
    bundle = t.child.match.group(1)
    for want in (rb"systemInfo +SystemInfo", rb"echo +ClientEndpoint \(Echo\)", rb"audit +ClientEndpoint \(AuditLog\)"):
        if not re.search(want, bundle):
            raise Failed(f"caps lacks {want!r}: {bundle!r}")
    t.send(b"\r")
    cmd(oper, b"systemInfo.summary()\r", rb"\(uptimeNanos = [0-9]+, cpus = [0-9]+, totalFrames", "a bundle capability works")
    cmd(oper, b'echo.echo(data: "as operator")\r', rb'\(data = "as operator"\)', "a bundle endpoint works")
    cmd(oper, b'run "session-probe" with { stdio: @stdio, sessions: @sessionManager, info: @systemInfo }\r',
        rb"probe: pid [0-9]+ holds 3: stdio, sessions, info", "a child holds exactly its grants")
    t.expect(rb"probe: runs in session principal=operator profile=operator live=true", "the child inherits the session")
    t.expect(rb"probe: systemInfo: [0-9]+ processes", "the child uses a bundle capability")
    t.expect(rb"\[pid [0-9]+ exited with code 0\]", "the child exits")
    cmd(oper, b'spawn "session-probe" with { info: @systemInfo, timer: @timer, console: @console } -> $p\r',
        rb"\[pid [0-9]+\] session-probe started; \$p is its handle", "a child keeps a bundle capability")
    t.wait_log(rb"probe: systemInfo works", "the running child's bundle capability works")
    cmd(oper, b"logout\r", rb"Logged out: the session's capabilities no longer work anywhere\.", "logout")
    t.wait_log(rb"probe: systemInfo stopped working: exception: disconnected: session ended",
               "the running child's copy stops working")
    cmd(anon, b"wait $p\r", rb"\[pid [0-9]+ exited with code 0\]", "the child saw the typed error")
    cmd(anon, b"systemInfo.summary()\r", rb"! no capability named `systemInfo`", "the bundle left the shell")
    cmd(anon, b"login operator\r", rb"", "login again")
    password(OPERATOR_PASSWORD, rb"Logged in as operator", "login again")
    log = cmd(oper, b"audit\r", rb"\(([0-9]+) records\)", "the audit log")
    steps = [rb"launchRefused +session [0-9a-f]{16} - \"hello\" is not on the launch allowlist",
             rb"loginFailure +session [0-9a-f]{16} - account \"operator\": denied",
             rb"loginFailure +session [0-9a-f]{16} - account \"operator\": denied, answer held [0-9]+ ms",
             rb"loginSuccess +session [0-9a-f]{16} operator account \"operator\"",
             rb"sessionStart +session [0-9a-f]{16} operator profile operator",
             rb"launch +session [0-9a-f]{16} operator session-probe as pid [0-9]+",
             rb"launch +session [0-9a-f]{16} operator session-probe as pid [0-9]+",
             rb"sessionEnd +session [0-9a-f]{16} operator logout",
             rb"loginSuccess +session [0-9a-f]{16} operator"]
    at = 0
    for step in steps:
        m = re.compile(step).search(log, at)
        if not m:
            raise Failed(f"the audit log lacks {step!r} after offset {at}: {log!r}")
        at = m.end()
    for secret in (b"wrong one", b"wrong two", OPERATOR_PASSWORD, b"$argon2"):
        if secret in log:
            raise Failed(f"the audit log holds a secret: {secret!r}")
    cmd(oper, b"logout\r", rb"Logged out", "logout again")
    # A guest: no bundle, nothing to launch, no audit log.
    cmd(anon, b"login guest\r", rb"", "a guest")
    password(GUEST_PASSWORD, rb"Logged in as guest-1 \(profile guest\)\. Bundle: none\.", "a guest's password")
    cmd(rb"guest-1@capos> ", b'run "hello" with { stdio: @stdio }\r',
        rb'! exception: failed: "hello" is not on the launch allowlist of profile guest', "a guest's launch refused")
    cmd(rb"guest-1@capos> ", b"audit\r", rb"! this session holds no audit log", "a guest reads no audit log")
    cmd(rb"guest-1@capos> ", b"logout\r", rb"Logged out", "the guest logs out")
    # Hostile input: a 1 MB password line, non-UTF-8 account and password.
    cmd(anon, b"login operator\r", rb"", "a 1 MB password")
    t.expect(rb"password: ", "a 1 MB password: prompt")
    t.send(b"p" * (1024 * 1024) + b"\r")
    t.expect(rb"login incorrect", "a 1 MB password refused")
    cmd(anon, b"login\r", rb"account: ", "a non-UTF-8 account")
    t.send(b"\xff\xfe\xc3operator\r")
    password(b"\xff\xfe\x80\x81", rb"login incorrect", "non-UTF-8 bytes refused")
    cmd(anon, b"login operator\r", rb"", "the operator after hostile input")
    password(OPERATOR_PASSWORD, rb"Logged in as operator", "the operator after hostile input")
    cmd(oper, b"exit\r", rb"exit", "exit")


def login_bench(t: Terminal) -> None:
    """`make bench`'s login figure: the operator logs in three times
    (manifests/login.capnp), each timed on the host from the password's
    Enter to `Logged in`, and logs out; the fastest is printed."""
    t.expect(rb"capOS shell\.", "banner")
    t.wait_log(rb"authd: serving CredentialStore", "the credential store is ready")
    times = []
    for _ in range(3):
        t.expect(rb"anonymous@capos> ", "prompt")
        t.send(b"login operator\r")
        t.expect(rb"password: ", "password prompt")
        start = time.monotonic()
        t.send(OPERATOR_PASSWORD + b"\r")
        t.expect(rb"Logged in as operator", "logged in")
        times.append(time.monotonic() - start)
        t.expect(rb"operator@capos> ", "operator prompt")
        t.send(b"logout\r")
        t.expect(rb"Logged out", "logged out")
    t.expect(rb"anonymous@capos> ", "last prompt")
    t.send(b"exit\r")
    t.expect(rb"exit", "exit")
    print("login-bench: login took %.3f s (fastest of %s)" % (min(times), ", ".join("%.3f" % x for x in times)))


SCENARIOS = {"terminal-test": terminal_test, "shell": shell, "shell-bench": shell_bench, "login": login,
             "login-bench": login_bench}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--timeout", type=float, required=True)
    ap.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    ap.add_argument("--mark", action="append", default=[])
    ap.add_argument("qemu", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.qemu[1:] if a.qemu[:1] == ["--"] else a.qemu
    cmd += ["-serial", f"file:{a.log}",
            "-chardev", "stdio,id=terminal,signal=off", "-serial", "chardev:terminal"]
    marks = [re.compile(m.encode()) for m in a.mark]
    mark_times = [None] * len(marks)
    start = time.monotonic()
    open(a.log, "wb").close()
    child = pexpect.spawn(cmd[0], cmd[1:], timeout=a.timeout, maxread=65536)
    child.logfile_read = open(a.log + ".term", "wb")
    done = threading.Event()

    def watch_log() -> None:
        # Marks are looked for in the kernel log as it grows.
        seen = 0
        while not done.is_set():
            try:
                with open(a.log, "rb") as f:
                    f.seek(seen)
                    chunk = f.read()
            except OSError:
                chunk = b""
            if chunk:
                seen += len(chunk)
                for i, m in enumerate(marks):
                    if mark_times[i] is None and m.search(chunk):
                        mark_times[i] = time.monotonic() - start
            done.wait(0.1)

    watcher = threading.Thread(target=watch_log, daemon=True)
    watcher.start()
    status = None
    try:
        # Each step waits at most a minute: a stuck step fails soon.
        SCENARIOS[a.scenario](Terminal(child, min(a.timeout, 60.0), a.log))
        child.expect(pexpect.EOF, timeout=a.timeout)
    except Failed as e:
        print(f"terminal_run: {a.scenario}: {e}", file=sys.stderr)
        status = "scenario-failed"
    except pexpect.TIMEOUT:
        status = "timeout"
    child.close(force=status is not None)
    if status is None:
        status = str(child.exitstatus if child.exitstatus is not None else child.signalstatus)
    done.set()
    watcher.join()
    seconds = time.monotonic() - start
    marks_out = " ".join(f"mark{i}={t:.2f}" if t is not None else f"mark{i}=-"
                         for i, t in enumerate(mark_times))
    print(f"status={status} seconds={seconds:.1f} {marks_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
