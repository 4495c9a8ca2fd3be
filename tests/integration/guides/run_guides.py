#!/usr/bin/env python3
"""Run the user guides as a newcomer would: every shell block, in order, exactly as written.

Usage: run_guides.py --build BUILD_DIR --source SOURCE_DIR [--root DIR] [--plan GUIDE[:PART],...]

Conventions a guide follows (Markdown; fences and markers alone on their line, at its start
or indented as in a list item):

  ```sh / ```bash / ```shell   a shell block: run verbatim by bash, as typed in a terminal.
  ```console                   a shell block in transcript form: lines starting with "$ " (and
                               their "\\" continuation lines) are run; the other lines are the
                               expected output of the block, compared as below.
  <!-- guide: skip (REASON) -->   the next shell block is not run (an apt/install step, the
                               README's own test command); the run lists it with its reason.
  <!-- guide: output -->       the next fenced block (```text) is the expected output of the
                               previous shell block (stdout and stderr, as a terminal shows them).
  <!-- guide: exit N -->       the next shell block must end with status N (a refusal the guide
                               shows); otherwise any failing command fails the guide.
  <!-- guide: part N -->       the rest of the guide is part N (see the plan below).

Every other fenced block (```text, ```json, ...) is prose and is not compared. Before comparing,
both sides are normalised: what a terminal shows is kept (a carriage return goes back to the
line start, ESC [ K clears the rest of the line, other escapes are dropped); the temporary home
is written "~"; times, dates and YYYY-MM periods, SHA-256 hashes, key ids (16 hex digits) and longer hex strings, 2.25.* UIDs, "N ms" durations
and "N bytes" sizes become placeholders; a line "..." in the expected output matches any number
of lines and "..." inside a line matches any text on that line.

The guides are one story on one machine: the developer packs bundles and hands them (with the
vendor key) to the operator through ~/handover; the operator certifies them and publishes the
catalog and its public key there for the clinic; the clinic hands its ledger export and its
public key back. PLAN is the order in which the guides' parts run. Each guide runs in its own
shell session (its cwd and variables persist from block to block and across its parts); all
share one fresh HOME, as a newcomer would have: no AGORA_HOME or XDG_* set, so the clinic home
is the default ~/.local/share/agora. ~/agora stands for the clone of the developer guide's
section 1, built in ~/agora/build: it is made of links to the source tree and to BUILD_DIR.
The build's agora is first on PATH and its agora-sdk.pc on PKG_CONFIG_PATH, as after
`ninja -C build install`.
"""
import argparse
import difflib
import fcntl
import glob
import os
import re
import secrets
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time

PLAN = [
    ("README.md", 1),
    ("docs/developer-guide.md", 1),
    ("docs/operator-guide.md", 1),
    ("docs/clinic-guide.md", 1),
    ("docs/operator-guide.md", 2),
    ("docs/clinic-guide.md", 2),
    ("docs/operator-guide.md", 3),
]
SHELL_LANGS = {"sh", "bash", "shell", "console"}
FENCE = re.compile(r"^( *)```\s*([A-Za-z0-9_+-]*)\s*$")
MARKER = re.compile(r"^\s*<!--\s*guide:\s*(\w+)\s*(.*?)\s*-->\s*$")
BLOCK_TIMEOUT_S = 300


class GuideError(Exception):
    """A guide that breaks the conventions above (names the file and line)."""


class Block:
    def __init__(self, path, line, lang, text, part):
        self.path, self.line, self.lang, self.part = path, line, lang, part
        self.script, self.expected, self.expected_lines = text, None, None
        self.skip, self.exit = None, 0
        if lang == "console":
            self.script, self.expected, offsets = split_console(text)
            self.expected_lines = [line + 1 + o for o in offsets]

    def where(self, offset=0):
        return "%s:%d" % (self.path, self.line + offset)


def split_console(text):
    """A transcript: "$ " lines (and continuations) are the script, the rest the output (with
    the offset of each output line in the block). Output lines become blank script lines so
    that script line numbers stay the guide's."""
    script, output, offsets, continued = [], [], [], False
    for i, raw in enumerate(text.split("\n")):
        if continued or raw.startswith("$ ") or raw == "$":
            cmd = raw if continued else raw[2:]
            script.append(cmd)
            continued = cmd.endswith("\\")
        else:
            script.append("")
            output.append(raw)
            offsets.append(i)
    return "\n".join(script), "\n".join(output), offsets


def parse_guide(root, path):
    """The shell blocks of one guide, with their markers applied, in order."""
    lines = open(os.path.join(root, path), encoding="utf-8").read().split("\n")
    blocks, pending, part, i, last_shell = [], {}, 1, 0, None
    while i < len(lines):
        m = MARKER.match(lines[i])
        if not m and "<!-- guide" in lines[i].replace("<!--guide", "<!-- guide"):
            raise GuideError("%s:%d: a guide marker must be alone on its line, as "
                             "<!-- guide: KIND ... -->" % (path, i + 1))
        if m:
            kind, arg = m.group(1), m.group(2)
            where = "%s:%d" % (path, i + 1)
            if kind == "skip":
                reason = arg.strip("()").strip()
                if not reason:
                    raise GuideError(where + ": 'guide: skip' needs a reason: skip (why)")
                pending["skip"] = reason
            elif kind == "output" and not arg:
                pending["output"] = True
            elif kind == "exit" and arg.isdigit():
                pending["exit"] = int(arg)
            elif kind == "part" and arg.isdigit() and int(arg) == part + 1:
                if pending:
                    raise GuideError(where + ": a marker before 'part' applies to nothing")
                part = int(arg)
            else:
                raise GuideError(where + ": unknown or malformed marker '%s'; use skip (REASON), "
                                 "output, exit N or part N (parts counted from 2)" % lines[i])
            i += 1
            continue
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        # A fence may be indented (inside a list item): so are its lines, by as much.
        pad, lang, start = m.group(1), m.group(2).lower(), i + 1
        end = i + 1
        while end < len(lines) and not lines[end].lstrip(" ").startswith("```"):
            end += 1
        if end == len(lines):
            raise GuideError("%s:%d: fenced block is never closed" % (path, start))
        text = "\n".join(l[len(pad):] if l.startswith(pad) else l.lstrip(" ")
                         for l in lines[i + 1:end])
        i = end + 1
        if pending.pop("output", False):
            if pending:
                raise GuideError("%s:%d: an output block cannot also be skip or exit" % (path, start))
            if last_shell is None or last_shell.skip or last_shell.expected is not None:
                raise GuideError("%s:%d: 'guide: output' must follow a shell block that runs and "
                                 "has no expected output yet" % (path, start))
            last_shell.expected = text
            last_shell.expected_lines = [start + 1 + k for k in range(text.count("\n") + 1)]
            last_shell = None
            continue
        if lang not in SHELL_LANGS:
            if pending:
                raise GuideError("%s:%d: a skip or exit marker must precede a shell block" % (path, start))
            last_shell = None
            continue
        b = Block(path, start, lang, text, part)
        b.skip, b.exit = pending.pop("skip", None), pending.pop("exit", 0)
        pending.clear()
        blocks.append(b)
        last_shell = b
    if pending:
        raise GuideError("%s: a marker at the end applies to nothing" % path)
    return blocks, part


def terminal_lines(text):
    """The lines a terminal shows for TEXT: a carriage return goes back to the line start and
    ESC [ K clears the rest of the line (the updating progress line writes both)."""
    out = []
    for line in text.split("\n"):
        shown, pos = "", 0
        for seg in re.split(r"(\r|\x1b\[K)", line):
            if seg == "\r":
                pos = 0
            elif seg == "\x1b[K":
                shown = shown[:pos]
            else:
                shown = shown[:pos] + seg + shown[pos + len(seg):]
                pos += len(seg)
        out.append(shown)
    return out


def normalise(text, home):
    """What may differ between two correct runs becomes a placeholder (see the module doc)."""
    text = text.replace("\r\n", "\n")
    if home:
        text = text.replace(home, "~")
    # Escape sequences are dropped, except clear-to-end-of-line (ESC [ K), which the updating
    # progress line uses after its carriage return.
    text = re.sub(r"\x1b\[(?!K)[0-9;?]*[A-Za-z]", "", text)
    text = "\n".join(line.rstrip() for line in terminal_lines(text))
    subs = [
        (r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\b", "<time>"),
        (r"\b\d{4}-\d\d-\d\d\b", "<date>"),
        (r"\b\d{4}-(0[1-9]|1[0-2])\b", "<period>"),
        (r"\b[0-9a-f]{64}\b", "<sha256>"),
        (r"\b[0-9a-f]{16}\b", "<keyid>"),
        (r"\b[0-9a-f]{32,}\b", "<hex>"),
        (r"\b2\.25\.\d+\b", "<uid>"),
        (r"\b\d+ ms\b", "<n> ms"),
        (r"\b\d+ bytes\b", "<n> bytes"),
    ]
    for pat, rep in subs:
        text = re.sub(pat, rep, text)
    return text.strip("\n")


def output_mismatch(expected, actual):
    """None when ACTUAL matches EXPECTED line by line (a line "..." matches any lines, "..." in
    a line any text), else the index of the first expected line that cannot match."""
    parts = []
    for line in expected.split("\n"):
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append("[^\n]*".join(re.escape(p) for p in line.split("...")) + r"\n")
    text = actual + "\n"
    if re.fullmatch("".join(parts), text):
        return None
    k = 0  # the longest run of expected lines that still fits the start of the output
    while k < len(parts) and re.match("".join(parts[:k + 1]), text):
        k += 1
    return k


class Session:
    """One bash reading commands from a pipe, its output on a pseudo-terminal (so that it is
    line-buffered and interleaved as a user sees it). set -e and an ERR trap end the session
    at the first failing command and record its status, line and text."""

    def __init__(self, env, cwd, work):
        self.fail_file = os.path.join(work, "fail")
        self.work, self.closed = work, False
        master, slave = os.openpty()
        attrs = termios.tcgetattr(slave)
        attrs[1] &= ~termios.ONLCR  # keep "\n" as written
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
        self.master = master
        self.proc = subprocess.Popen(["bash", "--noprofile", "--norc"], stdin=subprocess.PIPE,
                                     stdout=slave, stderr=slave, cwd=cwd, env=env,
                                     start_new_session=True, close_fds=True)
        os.close(slave)
        self.token = "__guide_done_" + secrets.token_hex(8)
        self.n = 0
        self.send("__guide_fail=%s\n"
                  "__guide_arm() { set -eE; trap 'printf \"%%s %%s\\n%%s\\n\" \"$?\" \"$LINENO\" "
                  "\"$BASH_COMMAND\" >\"$__guide_fail\"' ERR; }\n"
                  "__guide_disarm() { trap - ERR; set +eE; }\n"
                  "__guide_arm\n" % shquote(self.fail_file))

    def send(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def run(self, block, timeout):
        """Returns (status, output, failure) where failure is (status, line, command) when the
        session ended on a failing command, None otherwise."""
        self.n += 1
        if os.path.exists(self.fail_file):
            os.unlink(self.fail_file)
        script = os.path.join(self.work, "block%03d.sh" % self.n)
        with open(script, "w", encoding="utf-8") as f:
            f.write(block.script + "\n")
        src = "source %s </dev/null; printf '\\n%%s %%s\\n' %s \"$?\"" % (shquote(script), self.token)
        if block.exit:
            src = "__guide_disarm; %s; __guide_arm" % src
        try:
            self.send(src + "\n")
        except BrokenPipeError:
            pass
        buf, deadline = b"", time.monotonic() + timeout
        done = re.compile(rb"\n?" + self.token.encode() + rb" (\d+)\n")
        while True:
            m = done.search(buf)
            if m:
                return int(m.group(1)), buf[:m.start()].decode("utf-8", "replace"), None
            left = deadline - time.monotonic()
            if left <= 0:
                self.close(kill=True)
                return None, buf.decode("utf-8", "replace"), ("timeout", None, None)
            r, _, _ = select.select([self.master], [], [], min(left, 1.0))
            if not r:
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                chunk = b""
            if chunk:
                buf += chunk
                continue
            self.proc.wait()
            failure = ("?", None, "(the shell ended)")
            if os.path.exists(self.fail_file):
                head, _, cmd = open(self.fail_file, encoding="utf-8", errors="replace").read().partition("\n")
                st, _, line = head.partition(" ")
                failure = (st, int(line) if line.isdigit() else None, cmd.strip())
            return None, buf.decode("utf-8", "replace"), failure

    def close(self, kill=False):
        """End the shell (EOF on its input; SIGKILL to its own process group when KILL or when
        it has not exited within 10 s) and release the terminal."""
        if self.closed:
            return
        self.closed = True
        try:
            self.proc.stdin.close()
            if kill:
                raise subprocess.TimeoutExpired("bash", 0)
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        os.close(self.master)


def shquote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def command_start(script, lineno):
    """bash reports a continued command by one of its lines: go back to where it starts."""
    lines = script.split("\n")
    n = max(1, min(lineno, len(lines)))
    while n > 1 and lines[n - 2].endswith("\\"):
        n -= 1
    return n


def indent(text):
    text = text.rstrip("\n")
    return "\n".join("    | " + l for l in text.split("\n")) if text else "    | (no output)"


def make_home(tmp, build, source):
    home = os.path.join(tmp, "home")
    clone = os.path.join(home, "agora")
    os.makedirs(clone)
    os.makedirs(os.path.join(tmp, "tmp"))
    for name in os.listdir(source):
        # Not the repository, nor a build directory of the source tree: ~/agora/build is BUILD.
        if name in (".git", "build") or os.path.exists(os.path.join(source, name, "meson-private")):
            continue
        os.symlink(os.path.join(source, name), os.path.join(clone, name))
    os.symlink(build, os.path.join(clone, "build"))
    return home


def newcomer_env(tmp, home, build):
    keep = ("LANG", "LC_ALL", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TZ")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update({
        "HOME": home,
        "USER": os.environ.get("USER", "root"),
        "LOGNAME": os.environ.get("LOGNAME", "root"),
        "SHELL": "/bin/bash",
        "TERM": "dumb",
        "TMPDIR": os.path.join(tmp, "tmp"),
        "PATH": os.path.join(build, "host", "cli") + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "PKG_CONFIG_PATH": os.path.join(build, "sdk"),
    })
    env.setdefault("LANG", "C.UTF-8")
    return env


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True, help="the meson build directory")
    ap.add_argument("--source", required=True, help="the source tree (for ~/agora)")
    ap.add_argument("--root", help="where the guides are (default: --source)")
    ap.add_argument("--plan", help="GUIDE[:PART],... relative to --root (default: every guide, "
                    "in the order developer, operator, clinic)")
    ap.add_argument("--timeout", type=int, default=BLOCK_TIMEOUT_S, help="seconds per block")
    a = ap.parse_args()
    build, source = os.path.realpath(a.build), os.path.realpath(a.source)
    root = os.path.realpath(a.root or a.source)

    if a.plan:
        plan = []
        for item in a.plan.split(","):
            name, _, part = item.partition(":")
            plan.append((name, int(part) if part else None))
    else:
        plan = PLAN
        guides = {os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "docs", "*-guide.md"))}
        missing = sorted(guides - {g for g, _ in PLAN})
        if missing:
            print("not ok: %s not in the guide test's PLAN (tests/integration/guides/run_guides.py)"
                  % ", ".join(missing))
            return 1

    try:
        parsed = {g: parse_guide(root, g) for g in dict.fromkeys(g for g, _ in plan)}
    except (GuideError, OSError) as e:
        print("not ok: %s" % e)
        return 1
    for g, (_, nparts) in parsed.items():
        listed = {p for gg, p in plan if gg == g}
        if None not in listed and listed != set(range(1, nparts + 1)):
            print("not ok: %s has parts 1..%d but the plan runs %s" % (g, nparts, sorted(listed)))
            return 1

    tmp = tempfile.mkdtemp(prefix="agora-guides.")
    sessions, t0 = {}, time.monotonic()
    ran = compared = 0
    skipped = []
    try:
        home = make_home(tmp, build, source)
        env = newcomer_env(tmp, home, build)
        print("guides: HOME=%s (fresh), agora from %s" % (home, os.path.join(build, "host", "cli")))
        for guide, part in plan:
            if guide not in sessions:
                work = os.path.join(tmp, "session-%d" % len(sessions))
                os.makedirs(work)
                sessions[guide] = Session(env, home, work)
            started = time.monotonic()
            n = 0
            for b in parsed[guide][0]:
                if part is not None and b.part != part:
                    continue
                if b.skip:
                    skipped.append((b, b.skip))
                    print("skip %s: %s" % (b.where(), b.skip))
                    continue
                n += 1
                st, out, failure = sessions[guide].run(b, a.timeout)
                ran += 1
                if failure is not None:
                    fst, line, cmd = failure
                    if fst == "timeout":
                        print("not ok %s: the block did not finish within %d s; its output:\n%s"
                              % (b.where(), a.timeout, indent(out)))
                    else:
                        at = b.where(command_start(b.script, line)) if line else b.where()
                        print("not ok %s: `%s` exited with status %s; the block's output:\n%s"
                              % (at, cmd, fst, indent(out)))
                    return 1
                if st != b.exit:
                    print("not ok %s: the block ended with status %d where the guide expects %d; "
                          "its output:\n%s" % (b.where(), st, b.exit, indent(out)))
                    return 1
                if b.expected is not None:
                    compared += 1
                    want, got = normalise(b.expected, None), normalise(out, home)
                    # normalise() drops leading blank lines: keep the line numbers in step.
                    lead = len(b.expected) - len(b.expected.lstrip("\n"))
                    bad = output_mismatch(want, got)
                    if bad is not None:
                        wl = want.split("\n")
                        first = wl[bad] if bad < len(wl) else "(the end of the expected output)"
                        diff = difflib.unified_diff(wl, got.split("\n"), "guide", "actual",
                                                    lineterm="", n=2)
                        at = b.expected_lines[min(lead + bad, len(b.expected_lines) - 1)]
                        print("not ok %s:%d: the output of the block at line %d differs from the "
                              "guide, first at:\n    %s\n(- guide, + actual, after normalisation):\n%s"
                              % (b.path, at, b.line, first,
                                 "\n".join("    " + d for d in diff)))
                        return 1
            print("ok %s%s: %d block(s) in %.1f s" % (guide, "" if part is None else " part %d" % part,
                                                     n, time.monotonic() - started))
        print("guides: %d block(s) run, %d output(s) compared, %d skipped, %.1f s"
              % (ran, compared, len(skipped), time.monotonic() - t0))
        for b, why in skipped:
            print("  skipped %s: %s" % (b.where(), why))
        return 0
    finally:
        for s in sessions.values():
            s.close()
        if os.environ.get("AGORA_GUIDES_KEEP") == "1":
            print("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
