#!/usr/bin/env python3
"""The seccomp policy is reviewed like code: docs/sandbox.md must carry exactly the table that
`agora-runner --print-policy` prints (between the policy:begin/end markers)."""
import subprocess
import sys


def main():
    runner, doc = sys.argv[1], sys.argv[2]
    out = subprocess.run([runner, '--print-policy'], check=True, capture_output=True,
                         text=True).stdout
    printed = [l for l in out.splitlines() if l.startswith('| `')]
    text = open(doc, encoding='utf-8').read()
    if '<!-- policy:begin -->' not in text or '<!-- policy:end -->' not in text:
        print('docs/sandbox.md lacks the policy:begin/end markers')
        return 1
    section = text.split('<!-- policy:begin -->', 1)[1].split('<!-- policy:end -->', 1)[0]
    documented = [l for l in section.splitlines() if l.startswith('| `')]
    if printed != documented:
        missing = [l for l in printed if l not in documented]
        extra = [l for l in documented if l not in printed]
        print('policy table in docs/sandbox.md differs from agora-runner --print-policy')
        for l in missing:
            print('  missing from the doc: ' + l)
        for l in extra:
            print('  not in the policy:    ' + l)
        if not missing and not extra:
            print('  (same rows, different order)')
        print('regenerate: agora-runner --print-policy | sed -n "1,/^$/p"')
        return 1
    print('policy table matches (%d rows)' % len(printed))
    return 0


if __name__ == '__main__':
    sys.exit(main())
