#!/usr/bin/python3
"""Reads `agora queue --json` (stdin) for the `agora serve` end-to-end tests (issue 12).

  queue.py count [STATE|any] [PLUGIN_ID|any]   -> number of jobs in that state (of that plugin)
  queue.py ids [STATE|any] [PLUGIN_ID|any]     -> their ids, one a line, ascending
  queue.py field ID NAME                       -> one field of job ID (attempts, state,
                                                  next_attempt_at, last_error_class, ...)
  queue.py summary                             -> "state:count ..." sorted (for messages)

Jobs are the objects of the top-level list or of its "jobs" member.
"""
import json
import sys

ALIASES = {
    'plugin_id': ('plugin_id', 'plugin'),
    'attempts': ('attempts', 'attempt'),
    'next_attempt_at': ('next_attempt_at', 'next_attempt', 'next_at'),
    'last_error_class': ('last_error_class', 'error_class', 'class'),
}


def jobs(doc):
    if isinstance(doc, dict):
        doc = doc.get('jobs', [])
    return [j for j in doc if isinstance(j, dict)]


def field(j, name):
    for k in ALIASES.get(name, (name,)):
        if k in j:
            v = j[k]
            if isinstance(v, dict) and 'id' in v:  # "plugin": {"id": ..., "version": ...}
                v = v['id']
            return v
    return None


def select(js, state, plugin):
    return [j for j in js
            if state in ('any', field(j, 'state'))
            and plugin in ('any', field(j, 'plugin_id'))]


def main(argv):
    text = sys.stdin.read()
    try:
        js = jobs(json.loads(text))
    except ValueError:
        print('queue.py: `agora queue --json` did not print JSON: ' + text[:200], file=sys.stderr)
        return 2
    cmd = argv[1] if len(argv) > 1 else 'summary'
    a = argv[2:] + ['any', 'any']
    if cmd == 'count':
        print(len(select(js, a[0], a[1])))
    elif cmd == 'ids':
        for i in sorted(int(field(j, 'id')) for j in select(js, a[0], a[1])):
            print(i)
    elif cmd == 'field':
        for j in js:
            if str(field(j, 'id')) == a[0]:
                v = field(j, a[1])
                print('' if v is None else v)
                return 0
        print(f'queue.py: no job {a[0]}', file=sys.stderr)
        return 1
    elif cmd == 'summary':
        c = {}
        for j in js:
            c[field(j, 'state')] = c.get(field(j, 'state'), 0) + 1
        print(' '.join(f'{k}:{v}' for k, v in sorted(c.items(), key=str)) or 'empty')
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
