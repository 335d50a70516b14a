#!/usr/bin/python3
"""ODP against pinned memory on rxe0: the benchmark figures of `make bench`.

In the VM:   bench.py --bin DIR --out FILE [--only FIG,...]
On the host: bench.py --table FILE      (print the table of a results file)

Every figure is a ratio (or a count) measured side by side in this one boot:
the variants alternate A B A B ..., each round gives one value, and the
figure is the median over the rounds, with its min and max.  Each figure
carries its target and whether the median meets it; nothing here passes or
fails: a miss is a finding.  The JSON file records every sample, the exact
command lines, the kernel and the VM.
"""
import argparse
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEV = os.environ.get("DEV", "rxe0")
GID = os.environ.get("GID_INDEX", "1")
SERVER = "10.0.2.15"

# rxe hw counters (rdma statistic show link rxe0/1), grouped as in the README
RNR = ("rcvd_rnr_err", "send_rnr_err")
RETRANS = ("completer_retry_err", "rcvd_seq_err", "duplicate_request",
           "out_of_seq_request")
FATAL = ("retry_exceeded_err", "retry_rnr_exceeded_err")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, timeout=600):
    """Run cmd (a list); return (status, stdout, stderr)."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        return 124, e.stdout or "", (e.stderr or "") + "\n(time limit)"


def cmdline(cmd):
    return " ".join(shlex.quote(str(c)) for c in cmd)


class Results:
    def __init__(self):
        self.figures = []
        self.errors = []

    def add(self, fig, key, name, unit, samples, target, ok, commands,
            details=None, fmt="%.3f", judge="spread", note=None):
        """One figure: samples (one per round), target text, ok(v) -> bool.
        By default a target is met only if every round meets it, missed
        only if no round does, and otherwise cannot be judged."""
        f = {"figure": fig, "key": key, "name": name, "unit": unit,
             "samples": samples, "target": target, "commands": commands,
             "details": details or {}, "format": fmt, "judged_on": judge}
        if note:
            f["note"] = note
        if samples:
            f["median"] = statistics.median(samples)
            f["min"] = min(samples)
            f["max"] = max(samples)
            if ok is None:
                f["met"] = None
            elif judge == "spread":
                # met only if every round meets it, NO only if none does;
                # otherwise the spread hides the answer.  Each round is
                # judged: whether min or max is the worse end depends on
                # the target (>= or <=).
                f["round_met"] = [bool(ok(s)) for s in samples]
                if all(f["round_met"]):
                    f["met"] = True
                elif not any(f["round_met"]):
                    f["met"] = False
                else:
                    f["met"] = None
                    f["undecided"] = True
            else:
                v = {"median": f["median"], "max": f["max"], "min": f["min"]}[judge]
                f["met"] = bool(ok(v))
        else:
            f["median"] = f["min"] = f["max"] = None
            f["met"] = None
        self.figures.append(f)
        log("  %s: %s" % (name, fmt_row_value(f)))

    def unavailable(self, fig, key, name, unit, target, why, commands):
        self.figures.append({"figure": fig, "key": key, "name": name,
                             "unit": unit, "samples": [], "median": None,
                             "min": None, "max": None, "target": target,
                             "met": None, "commands": commands,
                             "unavailable": why, "format": "%.3f"})
        log("  %s: %s" % (name, why))

    def error(self, fig, what):
        log("  figure %s: ERROR %s" % (fig, what))
        self.errors.append({"figure": fig, "error": what})


def fmt_row_value(f):
    if f.get("unavailable"):
        return f["unavailable"]
    if f["median"] is None:
        return "no samples"
    fmt = f.get("format", "%.3f")
    return (fmt % f["median"]) + " (min " + (fmt % f["min"]) + ", max " + \
        (fmt % f["max"]) + ")"


# ---------------------------------------------------------------- perftest

def wait_listen(port, proc, secs=20):
    """Wait until proc listens on TCP port (read /proc: connecting would
    be taken by perftest's server as its client)."""
    end = time.time() + secs
    while time.time() < end:
        if proc.poll() is not None:
            return False
        for name in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(name) as f:
                    for line in f.readlines()[1:]:
                        parts = line.split()
                        if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                            return True
            except OSError:
                pass
        time.sleep(0.1)
    return False


def perftest_pair(tool, args, timeout=300):
    """Server and client of a perftest tool in loopback over DEV.

    Returns (average MB/s of the client, [server cmd, client cmd], log)."""
    port = 18515 + (os.getpid() + int(time.time() * 1000)) % 1000
    base = [tool, "-d", DEV, "-x", GID, "-p", str(port)] + args
    scmd, ccmd = base, base + [SERVER]
    srv = subprocess.Popen(scmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
    if not wait_listen(port, srv):
        srv.kill()
        out = srv.communicate()[0]
        return None, [cmdline(scmd), cmdline(ccmd)], "server did not listen:\n" + out
    st, cout, cerr = run(ccmd, timeout)
    try:
        sout = srv.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        srv.kill()
        sout = srv.communicate()[0]
    text = "server:\n%s\nclient:\n%s%s" % (sout, cout, cerr)
    bw = None
    lines = cout.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("#bytes") and i + 1 < len(lines):
            f = lines[i + 1].split()
            if len(f) >= 4:
                try:
                    bw = float(f[3])
                except ValueError:
                    pass
            break
    if st != 0 or srv.returncode != 0:
        bw = None
    return bw, [cmdline(scmd), cmdline(ccmd)], text


def perftest_retry(tool, args, failures, tries=4):
    """perftest_pair, tried again when a run breaks: under emulation
    perftest's own clock calibration sometimes refuses to report
    ("Correlation coefficient r^2 < 0.9").  Broken runs are counted in
    failures, never used."""
    for _ in range(tries):
        bw, cmds, text = perftest_pair(tool, args)
        if bw is not None:
            return bw, cmds, text
        why = [l for l in text.splitlines() if "r^2" in l or "Couldn't" in l
               or "Unable" in l or "failed" in l.lower()]
        failures.append({"command": cmds[1], "why": (why or ["exit status"])[0].strip()})
    return None, cmds, text


def fig1(res, rounds, secs):
    # perftest's own spread under emulation is about +-20%: at least 7 rounds
    rounds = max(rounds, 7)
    margin = max(1, secs // 4)
    for tool in ("ib_write_bw", "ib_read_bw", "ib_send_bw"):
        for size in (65536, 4096):
            ratios, odp_bw, pin_bw, cmds, failures = [], [], [], [], []
            common = ["-s", str(size), "-D", str(secs), "--margin", str(margin)]
            for r in range(rounds):
                o, c1, t1 = perftest_retry(tool, ["--odp"] + common, failures)
                p, c2, t2 = perftest_retry(tool, common, failures)
                cmds = c1 + c2
                if o is None or p is None:
                    res.error(1, "%s -s %d round %d failed:\n%s" % (
                        tool, size, r, (t1 if o is None else t2)[-1500:]))
                    continue
                odp_bw.append(o)
                pin_bw.append(p)
                ratios.append(o / p)
            res.add(1, "%s_%d" % (tool, size),
                    "%s %s ODP/pinned" % (tool, "64 KiB" if size == 65536 else "4 KiB"),
                    "ratio", ratios, ">= 0.98", lambda v: v >= 0.98, cmds,
                    {"odp_MBps": odp_bw, "pinned_MBps": pin_bw,
                     "broken_runs_retried": failures,
                     "order": "per round: ODP then pinned"})


# ---------------------------------------------------------------- odp_bench

def odp_bench(binary, rounds, args, timeout=900):
    cmd = [binary, "-d", DEV, "-g", GID, "-r", str(rounds)] + args
    env = dict(os.environ, ODP_BENCH_MRSTAT=os.path.join(HERE, "mrstat.py"))
    t0 = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           env=env)
        out, err, st = p.stdout, p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        out, err, st = e.stdout or "", "time limit", 124
    recs = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                recs.append(json.loads(line))
            except ValueError:
                pass
    log("  (%s: %.0f s)" % (cmdline(cmd), time.time() - t0))
    errors = [r["error"] for r in recs if "error" in r]
    if st != 0 and not errors:
        errors.append("exit %d: %s" % (st, err.strip()[-800:]))
    return [r for r in recs if "error" not in r], errors, cmdline(cmd)


def us(ns):
    return ns / 1000.0


def fig2(res, rounds, binary):
    sizes = [("64M", 64 << 20), ("1G", 1 << 30), ("4G", 4 << 30)]
    recs, errors, cmd = odp_bench(binary, rounds, ["reg"] + [s for s, _ in sizes])
    for e in errors:
        res.error(2, e)
    odp_by_size = {}
    for label, size in sizes:
        rr = [r for r in recs if r["size"] == size]
        odp = [us(r["odp_reg_ns"]) for r in rr]
        pin = [us(r["pinned_reg_ns"]) for r in rr]
        odp_by_size[size] = odp
        target, ok = (">= 1000", lambda v: v >= 1000) if size == 1 << 30 else ("", None)
        res.add(2, "reg_%s" % label,
                "ibv_reg_mr %s: pinned/ODP time" % label.replace("M", " MiB").replace("G", " GiB"),
                "x faster", [us(r["pinned_reg_ns"]) / us(r["odp_reg_ns"]) for r in rr],
                target, ok, [cmd],
                {"odp_reg_us": odp, "pinned_reg_us": pin,
                 "odp_dereg_us": [us(r["odp_dereg_ns"]) for r in rr],
                 "pinned_dereg_us": [us(r["pinned_dereg_ns"]) for r in rr],
                 "order": "per round: ODP reg, dereg, then pinned reg, dereg"},
                fmt="%.0f")
    # Against the cheapest registration there is: one pinned 4 KiB page,
    # timed just before each ODP registration in the same round.
    for label, size in sizes:
        rr = [r for r in recs if r["size"] == size]
        res.add(2, "reg_%s_vs_page" % label,
                "ODP reg %s / pinned reg 4 KiB" % label.replace("M", " MiB").replace("G", " GiB"),
                "ratio", [r["odp_reg_ns"] / r["pinned_4k_reg_ns"] for r in rr],
                "<= 2", lambda v: v <= 2, [cmd],
                {"odp_reg_us": [us(r["odp_reg_ns"]) for r in rr],
                 "pinned_4k_reg_us": [us(r["pinned_4k_reg_ns"]) for r in rr],
                 "order": "per round: pinned 4 KiB reg, dereg, then ODP reg"})
    # ODP time against size: per round, 4 GiB over 64 MiB.
    a, b = odp_by_size.get(4 << 30, []), odp_by_size.get(64 << 20, [])
    res.add(2, "reg_odp_growth", "ODP reg time 4 GiB / 64 MiB", "ratio",
            [x / y for x, y in zip(a, b)], "<= 2 (flat)", lambda v: v <= 2, [cmd],
            {"odp_reg_us_4G": a, "odp_reg_us_64M": b})
    irecs, ierrors, icmd = odp_bench(binary, rounds, ["implicit"])
    for e in ierrors:
        res.error(2, e)
    imp = [us(r["odp_reg_ns"]) for r in irecs]
    res.add(2, "reg_implicit", "implicit ODP reg (SIZE_MAX), us", "us", imp,
            "", None, [icmd], {"odp_dereg_us": [us(r["odp_dereg_ns"]) for r in irecs],
                               "explicit_odp_64M_reg_us": b}, fmt="%.1f")
    res.add(2, "reg_implicit_vs_page", "implicit ODP reg / pinned reg 4 KiB", "ratio",
            [r["odp_reg_ns"] / r["pinned_4k_reg_ns"] for r in irecs], "<= 2",
            lambda v: v <= 2, [icmd],
            {"pinned_4k_reg_us": [us(r["pinned_4k_reg_ns"]) for r in irecs],
             "order": "per round: pinned 4 KiB reg, dereg, then implicit ODP reg"})
    res.add(2, "reg_implicit_vs_64M", "implicit ODP reg / ODP reg 64 MiB", "ratio",
            [x / y for x, y in zip(imp, b)], "<= 2 (flat)", lambda v: v <= 2,
            [icmd, cmd], note="rounds paired by index across the two runs")


def fig3(res, rounds, binary):
    recs, errors, cmd = odp_bench(binary, rounds, ["cold", "256M"], timeout=1200)
    for e in errors:
        res.error(3, e)
    d = {"odp_cold_ms": [r["odp_cold_ns"] / 1e6 for r in recs],
         "odp_warm_ms": [r["odp_warm_ns"] / 1e6 for r in recs],
         "odp_reg_ms": [r["odp_reg_ns"] / 1e6 for r in recs],
         "pinned_reg_and_write_ms": [r["pinned_ns"] / 1e6 for r in recs],
         "pinned_reg_ms": [r["pinned_reg_ns"] / 1e6 for r in recs],
         "order": "per round: ODP reg+write (cold), write again (warm); "
                  "then pinned reg+write on fresh memory"}
    res.add(3, "cold_vs_warm", "WRITE 256 MiB cold ODP / warm ODP", "ratio",
            [r["odp_cold_ns"] / r["odp_warm_ns"] for r in recs], "<= 1.25",
            lambda v: v <= 1.25, [cmd], d)
    res.add(3, "cold_vs_pinned", "WRITE 256 MiB cold ODP / pin+write", "ratio",
            [r["odp_cold_ns"] / r["pinned_ns"] for r in recs], "<= 1.0",
            lambda v: v <= 1.0, [cmd], d)


def fig4(res, rounds, binary):
    recs, errors, cmd = odp_bench(binary, rounds, ["fault", "128"])
    for e in errors:
        res.error(4, e)
    med = [us(r["cold_median_ns"] - r["warm_median_ns"]) for r in recs]
    p99 = [us(r["cold_p99_ns"] - r["warm_p99_ns"]) for r in recs]
    minor = [us(r["minor_median_ns"]) for r in recs]
    d = {k: [r[k] for r in recs] for k in
         ("cold_median_ns", "cold_p99_ns", "warm_median_ns", "warm_p99_ns",
          "minor_median_ns", "minor_p99_ns", "clock_median_ns", "samples")}
    d["order"] = "per page: cold READ then warm READ of the same page"
    res.add(4, "fault_median", "cold 4 KiB READ - warm, median (us)", "us", med,
            "", None, [cmd], d, fmt="%.1f")
    res.add(4, "fault_p99", "cold 4 KiB READ - warm, p99 (us)", "us", p99,
            "", None, [cmd], d, fmt="%.1f")
    res.add(4, "fault_vs_minor", "cold fault cost / CPU minor fault", "ratio",
            [m / n for m, n in zip(med, minor)], "", None, [cmd],
            {"minor_fault_median_us": minor}, fmt="%.1f")


def fig5(res, rounds, binary):
    # the order of the variants alternates between rounds: an even number
    rounds = max(4, rounds + (rounds & 1))
    recs, errors, cmd = odp_bench(binary, rounds, ["inval", "1G"])
    for e in errors:
        res.error(5, e)
    d = {k: [r[k] / 1e6 for r in recs] for k in
         ("odp_dontneed_ns", "nomr_dontneed_ns", "odp_munmap_ns", "nomr_munmap_ns")}
    d = {k.replace("_ns", "_ms"): v for k, v in d.items()}
    d["order"] = ("each variant: DONTNEED, repopulate, munmap; even rounds with "
                  "the ODP MR first, odd rounds without it first")
    d["first"] = [r.get("first") for r in recs]
    if recs and recs[0].get("mirror"):
        d["mirror_first_round"] = recs[0]["mirror"]
    res.add(5, "inval_dontneed", "MADV_DONTNEED 1 GiB: ODP MR / no MR", "ratio",
            [r["odp_dontneed_ns"] / r["nomr_dontneed_ns"] for r in recs], "<= 1.3",
            lambda v: v <= 1.3, [cmd], d)
    res.add(5, "inval_munmap", "munmap 1 GiB: ODP MR / no MR", "ratio",
            [r["odp_munmap_ns"] / r["nomr_munmap_ns"] for r in recs], "<= 1.3",
            lambda v: v <= 1.3, [cmd], d)


def fig6(res, binary, span, pct, thp):
    recs, errors, cmd = odp_bench(binary, 1, ["meta", "64M", span, pct, thp], timeout=1200)
    for e in errors:
        res.error(6, e)
    for kind, name in (("explicit", "mirror bytes/page, explicit 64 MiB"),
                       ("implicit", "mirror bytes/page, implicit %s %s%% (2 MiB read faults)" % (span, pct)),
                       ("implicit_write", "mirror bytes/page, implicit %s %s%% (4 KiB write faults)" % (span, pct)),
                       ("implicit_block", "mirror bytes/page, implicit %s, 1 page per 2 MiB (4 KiB write faults)" % span)):
        r = [x for x in recs if x.get("kind") == kind]
        if not r:
            res.unavailable(6, "meta_" + kind, name, "bytes/page", "<= 8",
                            "odp_bench gave no record", [cmd])
            continue
        r = r[0]
        m = r.get("mirror") or {}
        if "odp_mirror_bytes" not in m or "odp_mirror_pages" not in m:
            res.unavailable(6, "meta_" + kind, name, "bytes/page", "<= 8",
                            "not available on this kernel", [cmd])
            res.figures[-1]["details"] = {"mrstat": m, "record": r}
            continue
        pages = m["odp_mirror_pages"]
        v = m["odp_mirror_bytes"] / pages if pages else None
        res.add(6, "meta_" + kind, name, "bytes/page", [v] if v is not None else [],
                "<= 8", lambda x: x <= 8, [cmd],
                {"mirror_bytes": m["odp_mirror_bytes"], "mirror_pages": pages,
                 "pages_in_range": r["pages"], "touched_pages": r["touched_pages"],
                 "touch_ms": r.get("touch_ns", 0) / 1e6},
                fmt="%.2f")
    r = [x for x in recs if x.get("kind") == "thp"]
    name = "mirror bytes per 2 MiB THP mapping, explicit %s" % thp
    if not r or "odp_mirror_bytes" not in (r[0].get("mirror") or {}):
        res.unavailable(6, "meta_thp", name, "bytes/2 MiB", "<= 16",
                        "odp_bench gave no record with mirror statistics", [cmd])
    else:
        r = r[0]
        maps = r["size"] // (2 << 20)
        v = r["mirror"]["odp_mirror_bytes"] / maps
        if r.get("thp_kb", -1) * 1024 < r["size"]:
            res.unavailable(6, "meta_thp", name, "bytes/2 MiB", "<= 16",
                            "the kernel gave %s KiB of THP for %d KiB" % (r.get("thp_kb"), r["size"] // 1024),
                            [cmd])
        else:
            res.add(6, "meta_thp", name, "bytes/2 MiB", [v], "<= 16",
                    lambda x: x <= 16, [cmd],
                    {"mirror_bytes": r["mirror"]["odp_mirror_bytes"], "mappings": maps,
                     "thp_kb": r["thp_kb"]}, fmt="%.1f")


def fig8(res, rounds, binary):
    recs, errors, cmd = odp_bench(binary, rounds, ["fork"])
    for e in errors:
        res.error(8, e)
    d = {"odp2_cow_ms": [r["odp2_cow_ns"] / 1e6 for r in recs],
         "nomr_cow_ms": [r["nomr_cow_ns"] / 1e6 for r in recs],
         "order": "per round: fork + COW of a fresh THP mirrored by two ODP "
                  "MRs, then of a fresh THP with no MR"}
    res.add(8, "fork_cow_extra", "fork+COW 2 MiB THP, 2 ODP MRs - no MR (ms)", "ms",
            [(r["odp2_cow_ns"] - r["nomr_cow_ns"]) / 1e6 for r in recs], "< 1000",
            lambda v: v < 1000, [cmd], d, fmt="%.1f", judge="max")


def fig9(res, rounds, binary):
    """rxe's copy path in the kernel: warm ODP MR against pinned, same memory."""
    rounds = max(rounds, 9)
    recs, errors, cmd = odp_bench(binary, rounds, ["copy"])
    for e in errors:
        res.error(9, e)
    for r in recs:
        if r["op"] == "atomic":
            name = "atomic fetch-add 8 B"
        elif r["len"] < 1024:
            name = "%s %d B" % (r["op"], r["len"])
        else:
            name = "%s %d KiB" % (r["op"], r["len"] // 1024)
        # the target is on the 4 KiB and 64 KiB copies; the 8-byte rows
        # show the per-call cost of each path
        judged = r["op"] != "atomic" and r["len"] >= 4096
        d = {"pinned_ns": r["pinned_ns"], "odp_ns": r["odp_ns"],
             "iterations": r["iters"], "order": r["order"]}
        res.add(9, "copy_%s_%d" % (r["op"], r["len"]),
                "in-kernel copy path %s: ODP/pinned time" % name, "ratio",
                [o / p for o, p in zip(r["odp_ns"], r["pinned_ns"])],
                "<= 1.02" if judged else "",
                (lambda v: v <= 1.02) if judged else None,
                [cmd], d, judge="spread")
        # where the difference goes: ODP's extra time per operation, and
        # per 4 KiB page it touches
        pages = max(1, r["len"] // 4096)
        res.add(9, "copy_%s_%d_extra_ns" % (r["op"], r["len"]),
                "  same, ODP - pinned per page, ns", "ns",
                [(o - p) / r["iters"] / pages
                 for o, p in zip(r["odp_ns"], r["pinned_ns"])],
                "", None, [cmd], d, fmt="%.0f")


def hw_counters():
    st, out, err = run(["rdma", "-j", "statistic", "show", "link", DEV + "/1"], 60)
    c = {}
    if st == 0:
        try:
            data = json.loads(out)
            for ent in data if isinstance(data, list) else [data]:
                for k, v in ent.items():
                    if isinstance(v, int):
                        c[k] = v
        except ValueError:
            pass
    if not c:  # plain text: "link rxe0/1 sent_pkts 12 rcvd_pkts 12 ..."
        st, out, err = run(["rdma", "statistic", "show", "link", DEV + "/1"], 60)
        toks = out.split()
        for i in range(len(toks) - 1):
            if re.fullmatch(r"\d+", toks[i + 1]) and re.fullmatch(r"[a-z_]+", toks[i]):
                c[toks[i]] = int(toks[i + 1])
    return c


def net_drops():
    """Kernel packet drop counters: netdevs, softnet, UDP."""
    d = {}
    for dev in sorted(os.listdir("/sys/class/net")):
        for k in ("rx_dropped", "tx_dropped", "rx_missed_errors"):
            try:
                with open("/sys/class/net/%s/statistics/%s" % (dev, k)) as f:
                    d["%s.%s" % (dev, k)] = int(f.read())
            except OSError:
                pass
    try:
        with open("/proc/net/softnet_stat") as f:
            d["softnet.dropped"] = sum(int(l.split()[1], 16) for l in f)
    except OSError:
        pass
    try:
        with open("/proc/net/snmp") as f:
            lines = [l.split() for l in f if l.startswith("Udp:")]
        hdr, val = lines[0], lines[1]
        for k in ("InErrors", "RcvbufErrors", "SndbufErrors"):
            if k in hdr:
                d["udp." + k] = int(val[hdr.index(k)])
    except (OSError, IndexError, ValueError):
        pass
    return d


def delta(a, b):
    return {k: b[k] - a.get(k, 0) for k in b}


def fig7(res, rounds):
    # 8 QPs, 2 MiB per QP buffer, 5 iterations (perftest's minimum): the
    # first pass of every QP faults its whole buffer, all QPs at once.
    args = ["-q", "8", "-s", "2097152", "-n", "5"]
    samples = {"odp": [], "pinned": []}
    failures = []
    cmd_of = {}
    for r in range(rounds):
        for mode in ("odp", "pinned"):
            for _ in range(2):  # counters around the one run that is used
                c0, n0 = hw_counters(), net_drops()
                bw, c, text = perftest_retry("ib_write_bw",
                                             (["--odp"] if mode == "odp" else []) + args,
                                             failures, tries=1)
                c1, n1 = hw_counters(), net_drops()
                if bw is not None:
                    break
            cmd_of[mode] = c
            if bw is None:
                res.error(7, "%s round %d failed:\n%s" % (mode, r, text[-1500:]))
                continue
            dc, dn = delta(c0, c1), delta(n0, n1)
            samples[mode].append({
                "MBps": bw, "hw": dc, "drops": dn,
                "rnr": sum(dc.get(k, 0) for k in RNR),
                "retrans": sum(dc.get(k, 0) for k in RETRANS),
                "timer_retries": max(0, dc.get("completer_retry_err", 0) -
                                     dc.get("rcvd_seq_err", 0)),
                "fatal": sum(dc.get(k, 0) for k in FATAL),
                "dropped": sum(dn.values())})
    cmds = cmd_of.get("odp", []) + cmd_of.get("pinned", [])
    if not hw_counters():
        res.unavailable(7, "storm", "fault storm counters", "count", "0",
                        "rxe hw counters not readable", cmds)
        return
    o = samples["odp"]
    d = {"odp_rounds": o, "pinned_rounds": samples["pinned"],
         "broken_runs_retried": failures,
         "order": "per round: ib_write_bw --odp (fresh process, cold memory), then pinned",
         "groups": {"rnr": RNR, "retrans": RETRANS, "fatal": FATAL,
                    "timer_retries": "completer_retry_err - rcvd_seq_err"}}
    res.add(7, "storm_timeouts", "8-QP cold --odp: retries on timeout + retry-exceeded",
            "count", [s["timer_retries"] + s["fatal"] for s in o], "0 (every round)",
            lambda v: v == 0, cmds, d, fmt="%d", judge="max")
    res.add(7, "storm_pinned_timeouts", "same, pinned: retries on timeout + exceeded",
            "count", [s["timer_retries"] + s["fatal"] for s in samples["pinned"]], "",
            None, cmds, d, fmt="%d")
    res.add(7, "storm_drops", "8-QP cold --odp: kernel packet drops", "count",
            [s["dropped"] for s in o], "0 (every round)", lambda v: v == 0, cmds, d,
            fmt="%d", judge="max")
    res.add(7, "storm_rnr", "8-QP cold --odp: RNR NAKs (rcvd+sent)", "count",
            [s["rnr"] for s in o], "", None, cmds, d, fmt="%d")
    res.add(7, "storm_retrans", "8-QP cold --odp: retransmission events", "count",
            [s["retrans"] for s in o], "", None, cmds, d, fmt="%d")
    res.add(7, "storm_pinned_retrans", "same, pinned: retransmission events", "count",
            [s["retrans"] for s in samples["pinned"]], "", None, cmds, d, fmt="%d")
    res.add(7, "storm_bw", "8-QP cold write BW ODP/pinned", "ratio",
            [a["MBps"] / b["MBps"] for a, b in zip(o, samples["pinned"])], "", None,
            cmds, d)


# ---------------------------------------------------------------- report

def table(doc):
    lines = []
    env = doc.get("environment", {})
    lines.append("kernel %s; VM: %s" % (env.get("kernel_release", "?"),
                                       env.get("vm_summary", "?")))
    r = doc.get("rounds") or 0
    lines.append("rounds: %s (figure 1: %s, figure 9: %s, figures 3 and 5: %s), A/B "
                 "interleaved; median (min..max) over rounds; a target is met only if "
                 "every round meets it" % (r, max(r, 7), max(r, 9), doc.get("big_rounds")))
    hdr = "%-3s %-52s %24s  %-16s %s" % ("fig", "figure", "median (min..max)", "target", "met")
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for f in doc["figures"]:
        if f.get("unavailable"):
            val = f["unavailable"]
            met = "-"
        elif f["median"] is None:
            val, met = "no samples", "-"
        else:
            fmt = f.get("format", "%.3f")
            val = "%s (%s..%s)" % (fmt % f["median"], fmt % f["min"], fmt % f["max"])
            met = {True: "yes", False: "NO", None: "-"}[f["met"]]
            if f.get("undecided"):
                met = "cannot judge at this spread"
            elif f.get("judged_on") in ("max", "spread") and f["met"] is not None:
                met += " (all rounds)" if f["judged_on"] == "spread" else " (max)"
        lines.append("%-3s %-52s %24s  %-16s %s" % (f["figure"], f["name"], val,
                                                   f["target"] or "(none)", met))
    for e in doc.get("errors", []):
        lines.append("ERROR in figure %s: %s" % (e["figure"], e["error"].splitlines()[0]))
    return "\n".join(lines)


def environment():
    env = {"kernel_release": platform.release()}
    try:
        env["kernel_version"] = open("/proc/version").read().strip()
        env["kernel_cmdline"] = open("/proc/cmdline").read().strip()
        mem = [l for l in open("/proc/meminfo") if l.startswith("MemTotal")]
        env["guest_memtotal"] = mem[0].split(None, 1)[1].strip()
    except OSError:
        pass
    env["guest_cpus"] = os.cpu_count()
    qa = os.path.join(os.environ.get("VM_SCRATCH", "/nonexistent"), "qemu-args")
    if os.path.exists(qa):
        env["qemu_args"] = open(qa).read().strip()
        a = env["qemu_args"]
        m = re.search(r"-m (\S+)", a)
        s = re.search(r"-smp (\S+)", a)
        t = re.search(r"-accel (\S+)", a)
        env["vm_summary"] = "QEMU %s, %s vCPUs, %s memory" % (
            t.group(1) if t else "?", s.group(1) if s else "?", m.group(1) if m else "?")
    else:
        env["vm_summary"] = "%s vCPUs, %s (QEMU arguments not recorded)" % (
            env["guest_cpus"], env.get("guest_memtotal"))
    st, out, _ = run(["ib_write_bw", "--version"], 30)
    env["perftest"] = out.strip().splitlines()[-1] if out.strip() else "?"
    return env


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(HERE, "../../../build/tests-bin"))
    ap.add_argument("--out")
    ap.add_argument("--table")
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 3)))
    ap.add_argument("--big-rounds", type=int,
                    default=int(os.environ.get("BENCH_BIG_ROUNDS", 2)),
                    help="rounds of figures 3 and 5 (256 MiB writes, 1 GiB ranges)")
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", 4)))
    ap.add_argument("--only", default=os.environ.get("BENCH_ONLY", "1,2,3,4,5,6,7,8,9"))
    ap.add_argument("--meta-span", default=os.environ.get("BENCH_META_SPAN", "64G"))
    ap.add_argument("--meta-pct", default=os.environ.get("BENCH_META_PCT", "1"))
    ap.add_argument("--meta-thp", default=os.environ.get("BENCH_META_THP", "1G"),
                    help="size of the THP-backed MR of figure 6 (bytes per 2 MiB mapping)")
    a = ap.parse_args()
    if a.table:
        with open(a.table) as f:
            print(table(json.load(f)))
        return 0

    binary = os.path.join(a.bin, "odp_bench")
    only = set(a.only.split(","))
    res = Results()
    doc = {"rounds": a.rounds, "big_rounds": a.big_rounds, "perftest_seconds": a.seconds,
           "environment": environment(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    log("bench: %s; %s" % (doc["environment"]["kernel_release"],
                            doc["environment"]["vm_summary"]))
    steps = [("1", "warm bandwidth", lambda: fig1(res, a.rounds, a.seconds)),
             ("2", "registration time", lambda: fig2(res, a.rounds, binary)),
             ("3", "cold first touch", lambda: fig3(res, a.big_rounds, binary)),
             ("4", "one cold fault", lambda: fig4(res, a.rounds, binary)),
             ("5", "invalidation", lambda: fig5(res, a.big_rounds, binary)),
             ("6", "mirror metadata", lambda: fig6(res, binary, a.meta_span, a.meta_pct, a.meta_thp)),
             ("7", "fault storm", lambda: fig7(res, a.rounds)),
             ("8", "fork with a mirrored THP", lambda: fig8(res, a.rounds, binary)),
             ("9", "copy path in the kernel", lambda: fig9(res, a.rounds, binary))]
    timings = {}
    for fig, name, fn in steps:
        if fig not in only:
            continue
        log("figure %s: %s" % (fig, name))
        t0 = time.time()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - a broken figure must not hide the others
            res.error(fig, "%s: %r" % (type(e).__name__, e))
        timings[fig] = round(time.time() - t0, 1)
    doc.update(figures=res.figures, errors=res.errors, seconds_per_figure=timings)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(doc, f, indent=1)
        log("bench: results written to %s" % a.out)
    else:
        print(table(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
