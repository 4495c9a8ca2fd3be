#!/usr/bin/env python3
"""Test the guide test: run_guides.py on small guides and on altered copies of a real one.

Usage: selftest.py --build BUILD_DIR --source SOURCE_DIR

Each case states what the runner must do: pass, or fail naming the guide line that is wrong.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = os.path.join(HERE, "run_guides.py")

CONVENTIONS = """# every convention, passing

```sh
echo hello
greeting=hi
cd ~
mkdir -p work && cd work
```

<!-- guide: output -->
```text
hello
```

Prose, then a transcript:

```console
$ echo "$greeting from $(basename "$PWD")"
hi from work
$ printf 'sha %s at 2026-12-01T10:00:00Z\\n' "$(printf x | sha256sum | cut -c1-64)"
sha 0000000000000000000000000000000000000000000000000000000000000000 at 2027-01-31T23:59:59Z
```

<!-- guide: skip (installs packages) -->
```sh
apt-get install -y something-not-run
```

<!-- guide: exit 3 -->
```sh
sh -c 'echo "refused: here is why" >&2; exit 3'
```

<!-- guide: output -->
```text
refused: ...
```

```bash
seq 1 5
```

<!-- guide: output -->
```text
1
...
5
```

- a list item with its own block:

  ```sh
  echo indented
  ```

  <!-- guide: output -->
  ```text
  indented
  ```

```json
{"not": "run"}
```
"""


def run(args, build, source):
    p = subprocess.run([sys.executable, RUNNER, "--build", build, "--source", source] + args,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    return p.returncode, p.stdout


def line_of(text, needle, after=0):
    """1-based number of the first line at or after line AFTER containing NEEDLE."""
    for i, line in enumerate(text.split("\n"), 1):
        if i >= after and needle in line:
            return i
    raise SystemExit("selftest: '%s' is not in the guide any more; update selftest.py" % needle)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--source", required=True)
    a = ap.parse_args()
    failures = 0
    tmp = tempfile.mkdtemp(prefix="agora-guides-selftest.")

    def case(name, guide_text, expect_rc, must_contain, path="g.md", extra=()):
        nonlocal failures
        root = os.path.join(tmp, name)
        os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
        with open(os.path.join(root, path), "w", encoding="utf-8") as f:
            f.write(guide_text)
        rc, out = run(["--root", root, "--plan", path] + list(extra), a.build, a.source)
        missing = [m for m in must_contain if not re.search(m, out)]
        if rc != expect_rc or missing:
            failures += 1
            print("not ok %s: exit %d (want %d), missing %s; runner output:\n%s"
                  % (name, rc, expect_rc, missing, out))
        else:
            print("ok %s" % name)

    try:
        c = CONVENTIONS
        case("conventions", c, 0, [r"skip g\.md:%d: installs packages" % (line_of(c, "apt-get") - 1),
                                   r"5 block\(s\) run, 5 output\(s\) compared, 1 skipped"])
        bad = c.replace("hi from work", "hello from work")
        case("console-output-changed", bad, 1, [r"not ok g\.md:%d: the output" % line_of(c, "hi from work"),
                                                r"\+hi from work"])
        bad = c.replace("refused: ...", "denied: ...")
        case("output-changed", bad, 1, [r"not ok g\.md:%d: the output" % line_of(c, "refused: ...")])
        bad = c.replace("exit 3 -->", "exit 1 -->")
        case("exit-status-changed", bad, 1, [r"not ok g\.md:%d: the block ended with status 3 "
                                             r"where the guide expects 1" % (line_of(bad, "exit 1 -->") + 1)])
        bad = c.replace("mkdir -p work && cd work", "mkdir -p work && cd work\nfalse --not-a-flag \\\n  x")
        case("command-fails", bad, 1, [r"not ok g\.md:%d: `false --not-a-flag x` exited with status 1"
                                       % line_of(bad, "false --not-a-flag")])
        case("bad-marker", c.replace("guide: skip (installs packages)", "guide: skipp"), 1,
             [r"g\.md:%d: unknown or malformed marker" % (line_of(c, "apt-get") - 2)])
        case("indented-output-changed", c.replace("  indented\n", "  outdented\n"), 1,
             [r"not ok g\.md:%d: the output" % line_of(c, "  indented")])
        case("marker-not-alone", c.replace("<!-- guide: output -->\n```text\nhello",
                                           "Text <!-- guide: output -->\n```text\nhello"), 1,
             [r"g\.md:%d: a guide marker must be alone on its line" % line_of(c, "<!-- guide: output -->")])
        case("timeout", "# t\n\n```sh\necho started\nsleep 60\n```\n", 1,
             [r"not ok g\.md:3: the block did not finish within 2 s", r"\| started"],
             extra=["--timeout", "2"])
        # An updating progress line (carriage return, clear to the end of the line): what the
        # terminal shows is its last state, with nothing left of the longer earlier one.
        case("updating-line", "# u\n\n```sh\nprintf 'step 1 of 2, a longer line\\r\\033[Kstep 2 of 2\\n'\n```\n\n"
             "<!-- guide: output -->\n```text\nstep 2 of 2\n```\n", 0,
             [r"1 block\(s\) run, 1 output\(s\) compared"])
        case("skip-needs-reason", c.replace("skip (installs packages)", "skip ()"), 1,
             [r"needs a reason"])

        # A real guide, copied with one command broken: the run stops there and names it.
        dev = open(os.path.join(a.source, "docs", "developer-guide.md"), encoding="utf-8").read()
        n = line_of(dev, "agora dev new brightness")
        lines = dev.split("\n")
        lines[n - 1] = lines[n - 1].replace("agora dev new brightness", "agora dev new --no-such-flag brightness")
        case("developer-guide-broken-command", "\n".join(lines), 1,
             [r"not ok docs/developer-guide\.md:%d: `agora dev new --no-such-flag brightness` exited "
              r"with status 2" % n], path="docs/developer-guide.md")
        # ... and with one line of expected output changed.
        m = line_of(dev, "<!-- guide: output -->")
        second = m + 3  # the marker, the fence, the first expected line, then the second
        lines = dev.split("\n")
        lines[second - 1] += " CHANGED"
        case("developer-guide-changed-output", "\n".join(lines), 1,
             [r"not ok docs/developer-guide\.md:%d: the output" % second, r"CHANGED"],
             path="docs/developer-guide.md")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("selftest: %s" % ("%d case(s) failed" % failures if failures else "all cases passed"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
