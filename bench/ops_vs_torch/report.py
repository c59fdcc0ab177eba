#!/usr/bin/python3
"""Summary of bench/ops_vs_torch: reads the "name threads seconds" files of
REPEAT alternating runs (selut.1 torch.1 selut.2 torch.2 ...) in a directory,
and prints per op of cases.txt: each library's median over the runs of its
per-run best (best of rounds, best thread count), the ratio of those
medians, the range of the per-run ratios (selut/PyTorch measured minutes
apart in the same run pair), and the fraction of memcpy bandwidth (bytes the
op must move per second over that library's own memcpy rate, both medians).
  /usr/bin/python3 report.py DIR CASES REPEAT"""
import collections
import statistics
import sys

d, cases, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
order, fam, traffic = [], {}, {}
for line in open(cases):
    f = line.split()
    if len(f) >= 3 and not line.startswith("#"):
        order.append(f[1])
        fam[f[1]], traffic[f[1]] = f[0], float(f[2])


def bests(path):
    """op -> (seconds, threads): the best over rounds and thread counts"""
    b = {}
    for line in open(path):
        name, thr, sec = line.split()
        if name not in b or float(sec) < b[name][0]:
            b[name] = (float(sec), int(thr))
    return b


runs = {lib: [bests("%s/%s.%d" % (d, lib, r)) for r in range(1, repeat + 1)] for lib in ("selut", "torch")}


def med(lib, op):
    xs = [r[op] for r in runs[lib] if op in r]
    t = statistics.median([x[0] for x in xs])
    thr = collections.Counter(x[1] for x in xs).most_common(1)[0][0]
    return t, thr


print("%-8s %-16s %11s %11s %6s %13s %8s %8s" % ("family", "op", "selut ms", "torch ms", "ratio", "ratio range", "selut bw", "torch bw"))
sm, tm = med("selut", "memcpy")[0], med("torch", "memcpy")[0]
for op in order:
    if not all(op in r for r in runs["selut"] + runs["torch"]):
        continue
    (s, st), (p, pt) = med("selut", op), med("torch", op)
    ratios = [a[op][0] / b[op][0] for a, b in zip(runs["selut"], runs["torch"])]
    sbw, pbw = traffic[op] / 2 * sm / s, traffic[op] / 2 * tm / p
    extra = "   (%.2fx memcpy)" % (s / sm) if fam[op] == "shape" else ""
    print("%-8s %-16s %8.3f(%d) %8.3f(%d) %6.2f %6.2f-%-6.2f %7.0f%% %7.0f%%%s" % (
        fam[op], op, s * 1e3, st, p * 1e3, pt, s / p, min(ratios), max(ratios), 100 * sbw, 100 * pbw, extra))
