#!/usr/bin/env python3
"""Turn a test log into per-case results, and sum results up.

  results.py parse FORMAT SUITE LOG STATUS RESULTS [EXPECTED]
      FORMAT: tap (KTAP/KUnit from dmesg, kselftest, our TAP tests)
              unittest (python unittest -v, e.g. rdma-core's pyverbs suite)
      STATUS: exit status of the run (vm-run's: 124 timeout, 125 kernel
              report, 126 VM failure).  A non-zero status fails the suite
              ('[exit]') unless a case failed, or it is FAILED_STATUS (1, the
              status of kselftest, unittest and our TAP programs when a case
              failed) and a listed expected failure did fail.
      unittest: the final 'Ran N tests' line must be there.
      TAP: the top-level plan ('1..N', summed over top-level plans, e.g. one
      per KUnit module) must be there and match the top-level results, else
      '[plan]' fails: a run that died half-way is not a pass.
      Appends one line per case to RESULTS: suite<TAB>case<TAB>result<TAB>note
  results.py summary RESULTS
      Prints failures and skips, then 'N passed, N failed, N skipped';
      exits 1 if anything failed.
"""
import re
import sys

TS = re.compile(r'^\[\s*\d+\.\d+\]\s?')
PLAN = re.compile(r'^(\s*)1\.\.(\d+)\s*(#.*)?$')
# The exit status of a test program whose cases ran and some failed
# (kselftest's KSFT_FAIL, unittest, tap_done()).
FAILED_STATUS = 1
TAP = re.compile(r'^(\s*)(not ok|ok)\s+\d+\s*-?\s*([^#]*?)\s*(#\s*(.*))?$')
UT_START = re.compile(r'^(test\S*) \((\S+)\)')
UT_RAN = re.compile(r'^Ran \d+ tests? in ')
UT_RESULT = re.compile(r"\.\.\. (ok|FAIL|ERROR|skipped (.*)|expected failure|unexpected success)$")


def parse_tap(lines):
    """Yield (name, result, note) for leaf cases of (nested) TAP."""
    pending = []            # result lines seen, with their indentation
    out = []
    for raw in lines:
        line = TS.sub('', raw.rstrip('\n'))
        m = TAP.match(line)
        if not m:
            continue
        indent = len(m.group(1).expandtabs())
        # A line with deeper lines right before it is a parent: drop it,
        # its children were counted.
        has_children = bool(pending) and pending[-1] > indent
        while pending and pending[-1] > indent:
            pending.pop()
        pending.append(indent)
        if has_children:
            continue
        ok = m.group(2) == 'ok'
        directive = (m.group(5) or '').strip()
        if directive.upper().startswith('SKIP'):
            res, note = 'skip', directive[4:].strip()
        elif directive.upper().startswith('TODO'):
            res, note = 'skip', 'TODO ' + directive[4:].strip()
        else:
            res, note = ('pass' if ok else 'fail'), directive
        out.append((m.group(3).strip(), res, note))
    return out


def check_tap_plan(lines):
    """None if the top-level plan matches the top-level results, else why not.

    Top level is the least indented TAP line (KUnit nests suites and cases
    under one '1..1' per module; kselftest and our programs are flat)."""
    plans, results = [], []
    for raw in lines:
        line = TS.sub('', raw.rstrip('\n'))
        m = PLAN.match(line)
        if m:
            plans.append((len(m.group(1).expandtabs()), int(m.group(2))))
            continue
        m = TAP.match(line)
        if m:
            results.append(len(m.group(1).expandtabs()))
    if not results:
        return None             # reported as "no test results found"
    top = min(results)
    planned = [n for ind, n in plans if ind == top]
    ran = sum(1 for ind in results if ind == top)
    if not planned:
        return 'no TAP plan (1..N): the run ended before its end, %d top-level results' % ran
    if sum(planned) != ran:
        return '%d top-level results for a plan of %d' % (ran, sum(planned))
    return None


def parse_unittest(lines):
    out = []
    current = None
    for raw in lines:
        line = raw.rstrip('\n')
        m = UT_START.match(line)
        if m:
            current = m.group(1) + ' (' + m.group(2) + ')'
        r = UT_RESULT.search(line)
        if r and current:
            word = r.group(1)
            if word == 'ok':
                out.append((current, 'pass', ''))
            elif word.startswith('skipped'):
                out.append((current, 'skip', (r.group(2) or '').strip("'\"")))
            elif word == 'expected failure':
                out.append((current, 'skip', 'expected failure'))
            else:
                out.append((current, 'fail', word))
            current = None
    return out


def load_expected(path):
    exp = {}
    if not path:
        return exp
    try:
        with open(path) as f:
            for line in f:
                line = line.rstrip('\n')
                if not line or line.startswith('#'):
                    continue
                suite, case, reason = line.split('\t', 2)
                exp[(suite, case)] = reason
    except FileNotFoundError:
        pass
    return exp


def cmd_parse(fmt, suite, log, status, results, expected=None):
    with open(log, errors='replace') as f:
        lines = f.readlines()
    cases = parse_tap(lines) if fmt == 'tap' else parse_unittest(lines)
    exp = load_expected(expected)
    status = int(status)
    rows = []
    for name, res, note in cases:
        reason = exp.get((suite, name))
        if reason is not None and res == 'fail':
            res, note = 'skip', 'expected failure: ' + reason
        rows.append((suite, name, res, note))
    vm_reasons = {124: 'time limit passed', 125: 'guest kernel reported a problem',
                  126: 'the VM failed'}
    failed = any(r[2] == 'fail' for r in rows)
    expected_failed = any(r[3].startswith('expected failure: ') for r in rows)
    if status in vm_reasons:
        why = vm_reasons[status]
        # vm-run's one-line digest of the kernel report, so that the
        # summary (all that CI keeps) says what the kernel reported
        # (a cluster node's lines come prefixed with 'nodeN: ')
        tag = 'vm-run: first report: '
        report = [l.strip().replace(tag, '', 1) for l in lines if tag in l]
        if status == 125 and report:
            why += ': ' + report[0][:300]
        rows.append((suite, '[vm]', 'fail', why))
    elif not cases:
        rows.append((suite, '[results]', 'fail', 'no test results found (exit status %d)' % status))
    elif status != 0 and not failed and not (status == FAILED_STATUS and expected_failed):
        why = 'exit status %d' % status
        if expected_failed:
            why += ' (only %d means "a case failed", which the expected failures explain)' % FAILED_STATUS
        rows.append((suite, '[exit]', 'fail', why))
    if fmt == 'tap' and cases:
        why = check_tap_plan(lines)
    elif cases:
        # unittest prints 'Ran N tests in S' once the whole run ended
        why = None if any(UT_RAN.match(l) for l in lines) else \
            "no 'Ran N tests' line: the run ended before its end"
    if cases:
        if why:
            rows.append((suite, '[plan]', 'fail', why))
    with open(results, 'a') as f:
        for r in rows:
            f.write('\t'.join(x.replace('\t', ' ') for x in r) + '\n')
    p = sum(r[2] == 'pass' for r in rows)
    fl = sum(r[2] == 'fail' for r in rows)
    s = sum(r[2] == 'skip' for r in rows)
    print('%-12s %d passed, %d failed, %d skipped' % (suite + ':', p, fl, s))
    for r in rows:
        if r[2] == 'fail':
            print('  FAIL %s %s' % (r[1], r[3]))


def cmd_summary(results):
    rows = []
    with open(results) as f:
        for line in f:
            parts = line.rstrip('\n').split('\t')
            if len(parts) == 4:
                rows.append(parts)
    skips = [r for r in rows if r[2] == 'skip']
    fails = [r for r in rows if r[2] == 'fail']
    if skips:
        print('Skipped:')
        for r in skips:
            print('  %s: %s -- %s' % (r[0], r[1], r[3]))
    if fails:
        print('Failed:')
        for r in fails:
            print('  %s: %s -- %s' % (r[0], r[1], r[3]))
    print('%d passed, %d failed, %d skipped' %
          (sum(r[2] == 'pass' for r in rows), len(fails), len(skips)))
    return 1 if fails or not rows else 0


if __name__ == '__main__':
    if len(sys.argv) >= 7 and sys.argv[1] == 'parse':
        cmd_parse(*sys.argv[2:8])
    elif len(sys.argv) >= 6 and sys.argv[1] == 'parse':
        cmd_parse(*sys.argv[2:7])
    elif len(sys.argv) == 3 and sys.argv[1] == 'summary':
        sys.exit(cmd_summary(sys.argv[2]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
