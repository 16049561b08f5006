"""Draws a soak run: p50 and p99 per slice and resident memory, per instance, over time.

Usage: soak_plot.py OUT_DIR [PNG]   (needs matplotlib: pip install matplotlib)
"""

import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

out = sys.argv[1]
png = sys.argv[2] if len(sys.argv) > 2 else f"{out}/soak.png"

latency = defaultdict(lambda: defaultdict(list))
with open(f"{out}/latency.csv") as f:
    for row in csv.DictReader(f):
        series = latency[row["instance"]]
        series["t"].append(float(row["seconds"]))
        for key in ("p50_ms", "p99_ms", "requests_per_second"):
            series[key].append(float(row[key]))
memory = defaultdict(lambda: defaultdict(list))
with open(f"{out}/rss.csv") as f:
    for row in csv.DictReader(f):
        memory[row["instance"]]["t"].append(float(row["seconds"]))
        memory[row["instance"]]["mib"].append(int(row["rss_kib"]) / 1024)

fig, (lat, rate, rss) = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
for name, series in sorted(latency.items()):
    lat.plot(series["t"], series["p99_ms"], marker="o", label=f"{name} p99")
    lat.plot(series["t"], series["p50_ms"], marker=".", linestyle="--", label=f"{name} p50")
    rate.plot(series["t"], series["requests_per_second"], marker=".", label=name)
for name, series in sorted(memory.items()):
    rss.plot(series["t"], series["mib"], label=name)
lat.set_ylabel("latency per slice (ms)")
lat.set_yscale("log")
rate.set_ylabel("requests/s per instance")
rss.set_ylabel("resident memory (MiB)")
rss.set_xlabel("seconds into the soak")
for axis in (lat, rate, rss):
    axis.grid(True, alpha=0.3)
    axis.legend(loc="upper right", fontsize="small")
lat.set_title("Soak: two instances on one PostgreSQL, 90 % decisions / 8 % consent writes / 2 % answers")
fig.tight_layout()
fig.savefig(png, dpi=90)
print(png)
