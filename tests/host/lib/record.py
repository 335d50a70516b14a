#!/usr/bin/env python3
"""Write a run's results as a section of RESULTS.md.

  record.py check OUT KERNEL_RELEASE DEBUG [DOC]
      From OUT/results.tsv (tests/host/check's per-case results) and
      OUT/times.tsv (suite<TAB>seconds): per suite passed / failed / skipped
      and its time, the totals, every failure with its note.
  record.py bench OUT [DOC]
      From OUT/results.json (tests/host/bench/run): the figure table as
      tests/guest/bench/bench.py --table prints it, with the run's start time
      and kernel.

Writes the section to OUT/results.md; with DOC (RECORD=1: the project's
RESULTS.md) also replaces the section of that name in DOC, between its
'<!-- begin NAME -->' and '<!-- end NAME -->' lines.  Only what the run
measured is written: a count comes from results.tsv, a figure from
results.json, nothing else.
"""
import collections
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # nothing written beside the sources
HERE = os.path.dirname(os.path.abspath(__file__))


def section_check(out, kernel, debug):
    counts = collections.OrderedDict()
    fails = []
    with open(os.path.join(out, 'results.tsv')) as f:
        for line in f:
            parts = line.rstrip('\n').split('\t')
            if len(parts) != 4:
                continue
            c = counts.setdefault(parts[0], {'pass': 0, 'fail': 0, 'skip': 0})
            c[parts[2]] = c.get(parts[2], 0) + 1
            if parts[2] == 'fail':
                fails.append(parts)
    times = {}
    tpath = os.path.join(out, 'times.tsv')
    if os.path.exists(tpath):
        with open(tpath) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:
                    times[parts[0]] = parts[1]
    ended = time.strftime('%Y-%m-%d %H:%M %Z', time.localtime(os.path.getmtime(
        os.path.join(out, 'results.tsv'))))
    lines = ['`make check%s` of %s, kernel %s, suites: %s.' % (
        ' DEBUG=1' if debug == '1' else '', ended, kernel, ' '.join(counts) or 'none'),
        '',
        '| suite | passed | failed | skipped | seconds |',
        '| --- | ---: | ---: | ---: | ---: |']
    tot = collections.Counter()
    for suite, c in counts.items():
        lines.append('| `%s` | %d | %d | %d | %s |' % (suite, c['pass'], c['fail'], c['skip'],
                                                      times.get(suite, '?')))
        tot.update(c)
    secs = [int(times[s]) for s in counts if times.get(s, '').isdigit()]
    lines.append('| all | %d | %d | %d | %s |' % (tot['pass'], tot['fail'], tot['skip'],
                                                  sum(secs) if secs else '?'))
    if fails:
        lines += ['', 'Failed:', '']
        lines += ['- `%s`: %s -- %s' % (r[0], r[1], r[3]) for r in fails]
    return 'make check', '\n'.join(lines)


def section_bench(out):
    sys.path.insert(0, os.path.join(HERE, '..', '..', 'guest', 'bench'))
    import bench  # noqa: E402 - tests/guest/bench/bench.py, for its table()
    with open(os.path.join(out, 'results.json')) as f:
        doc = json.load(f)
    lines = ['`make bench` (tests/host/bench/run), started %s; every sample in '
             '`build/bench/results.json`.' % doc.get('started', '?'), '',
             '```', bench.table(doc), '```']
    return 'make bench', '\n'.join(lines)


def splice(doc, name, text):
    begin, end = '<!-- begin %s -->' % name, '<!-- end %s -->' % name
    with open(doc) as f:
        lines = f.read().split('\n')
    try:
        b, e = lines.index(begin), lines.index(end)
    except ValueError:
        sys.exit('record.py: %s has no %s ... %s lines' % (doc, begin, end))
    lines[b + 1:e] = text.split('\n')
    with open(doc + '.tmp', 'w') as f:
        f.write('\n'.join(lines))
    os.replace(doc + '.tmp', doc)


def main(argv):
    if len(argv) >= 5 and argv[1] == 'check':
        out, (name, text), doc = argv[2], section_check(argv[2], argv[3], argv[4]), argv[5:]
    elif len(argv) >= 3 and argv[1] == 'bench':
        out, (name, text), doc = argv[2], section_bench(argv[2]), argv[3:]
    else:
        print(__doc__, file=sys.stderr)
        return 2
    with open(os.path.join(out, 'results.md'), 'w') as f:
        f.write(text + '\n')
    if doc:
        splice(doc[0], name, text)
        print('record: %s section of %s rewritten' % (name, doc[0]))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
