#!/usr/bin/env python3
"""Compare a suite's results with a baseline run on stock 6.12.

  baseline.py SUITE RESULTS BASELINE EXEMPT_PREFIX

Prints one result row (suite, case '[baseline]', pass/fail, note): it fails
when a case outside EXEMPT_PREFIX ended differently from the baseline
(pass -> skip/fail, skip -> pass/fail) or when a baseline case is missing.
"""
import sys


def main(suite, results, baseline, exempt):
    now = {}
    with open(results) as f:
        for line in f:
            parts = line.rstrip('\n').split('\t')
            if len(parts) == 4 and parts[0] == suite:
                # a listed expected failure (tests/expected-failures) keeps
                # the result it had, with its reason printed by the summary
                xfail = parts[2] == 'skip' and parts[3].startswith('expected failure: ')
                now[parts[1]] = 'xfail' if xfail else parts[2]
    base = {}
    with open(baseline) as f:
        for line in f:
            if line.startswith('#') or not line.strip():
                continue
            case, res = line.rstrip('\n').split('\t')[:2]
            base[case] = res
    diffs = []
    for case, res in sorted(base.items()):
        name = case.split(' (')[1].rstrip(')') if ' (' in case else case
        if name.startswith(exempt):
            continue
        got = now.get(case)
        if got == 'xfail':
            continue
        if got != res:
            diffs.append('%s: %s on stock, %s now' % (case.split(' ')[0], res, got or 'missing'))
    checked = sum(1 for c in base if not (c.split(' (')[-1].rstrip(')').startswith(exempt)))
    if diffs:
        note = '%d of %d cases differ from stock 6.12: %s' % (len(diffs), checked, '; '.join(diffs[:10]))
        row = (suite, '[baseline]', 'fail', note)
    else:
        row = (suite, '[baseline]', 'pass',
               'all %d cases outside %s end as on stock 6.12' % (checked, exempt.rstrip('.')))
    print('\t'.join(row))


if __name__ == '__main__':
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(*sys.argv[1:])
