"""Assembles the one JSON report of tools/gpu/check.sh from the step logs: card, date, every
step's status and parsed output, and ratios ours / PyTorch (eager, torch.compile) per config.
Prints a short table (the device tool returns the end of the output).

Usage: python3 tools/gpu/report.py --logs DIR --device cuda --out gpu-report.json [--nvtx PATH] [--seconds N]
"""
import argparse
import csv
import datetime
import json
import os
import re


def parse_json(text):
    """The whole stdout as JSON, else its last line that parses (the reference prints one line)."""
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        for line in reversed(text.splitlines()):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def ratio(a, b):
    return round(a / b, 4) if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b > 0 else None


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--logs", required=True)
    p.add_argument("--device", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--nvtx", default="")
    p.add_argument("--seconds", type=int, default=0)
    args = p.parse_args()

    steps = {}
    with open(os.path.join(args.logs, "steps.tsv")) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            name = row["name"]
            out, err = read(os.path.join(args.logs, name + ".out")), read(os.path.join(args.logs, name + ".err"))
            steps[name] = {"rc": row["rc"], "seconds": float(row["seconds"] or 0), "command": row["command"],
                           "ok": row["rc"] == "0", "result": parse_json(out),
                           "stderr_tail": err[-1500:] if row["rc"] != "0" else err[-300:]}
            if name == "nvidia_smi":
                steps[name]["result"] = out.strip()

    def res(name):
        s = steps.get(name)
        return s["result"] if s and isinstance(s["result"], dict) else None

    card = None
    smi = steps.get("nvidia_smi", {}).get("result")
    if isinstance(smi, str) and "\n" in smi:
        card = smi.splitlines()[1].split(",")[0].strip()
    doctor = res("doctor") or {}
    if card is None:
        for d in doctor.get("devices", []):
            if d.get("device_name"):
                card = d["device_name"]

    selftest = res("selftest")
    # compute-sanitizer: "ERROR SUMMARY: N errors" and the first reported hazards of each tool.
    sanitizer = {}
    for tool in ("memcheck", "racecheck"):
        s = steps.get("sanitizer_" + tool)
        if not s:
            continue
        log = read(os.path.join(args.logs, f"sanitizer_{tool}.log"))
        m = re.search(r"ERROR SUMMARY: (\d+) error", log)
        sanitizer[tool] = {"rc": s["rc"], "errors": int(m.group(1)) if m else None,
                           "first": [l for l in log.splitlines() if re.search(r"(Invalid|Hazard|Race|Error)", l)][:12],
                           "selftest_failed": (s["result"] or {}).get("failed") if isinstance(s["result"], dict) else None}
    comparisons = []
    for name in sorted(steps):
        if not name.startswith("train_"):
            continue
        cfg = name[len("train_"):]
        ours = res(name) or {}
        eager = res("torch_eager_" + cfg) or {}
        comp = res("torch_compile_" + cfg) or {}
        ms = ours.get("ms_per_step")
        comparisons.append({
            "config": cfg, "what": "training step (forward, backward, clip, AdamW)", "batch": ours.get("batch"),
            "ours_ms": ms, "pytorch_eager_ms": eager.get("ms_per_step"), "pytorch_compile_ms": comp.get("ms_per_step"),
            "ours_over_eager": ratio(ms, eager.get("ms_per_step")), "ours_over_compile": ratio(ms, comp.get("ms_per_step")),
        })
        if "_j" in cfg:
            # Our bottleneck time: the step's median times the bottleneck sections' share (synchronised steps).
            share = (ours.get("share_bottleneck_forward") or 0) + (ours.get("share_bottleneck_backward") or 0)
            b_ms = round(ms * share, 4) if ms and share else None
            j = cfg.split("_j")[-1]
            be = res("torch_eager_bottleneck_j" + j) or {}
            bc = res("torch_compile_bottleneck_j" + j) or {}
            comparisons.append({
                "config": "mvq-bottleneck_j" + j, "what": "MVQ bottleneck forward + backward (ours: step x bottleneck share)",
                "batch": ours.get("batch"), "ours_ms": b_ms, "pytorch_eager_ms": be.get("ms_per_step"),
                "pytorch_compile_ms": bc.get("ms_per_step"),
                "ours_over_eager": ratio(b_ms, be.get("ms_per_step")), "ours_over_compile": ratio(b_ms, bc.get("ms_per_step")),
            })

    # Throughput matrix (check.sh `throughput`): per (preset, batch), ours and PyTorch per variant, with ratios of
    # like-for-like pairs (graphs on vs torch.compile reduce-overhead; graphs off vs eager; same TF32 setting).
    throughput = []
    cells = {}
    for name in steps:
        m = re.match(r"tp_(ours|torch)_(.+)_b(\d+)_(.+)$", name)
        if m:
            cells.setdefault((m.group(2), int(m.group(3))), {})[m.group(1) + "_" + m.group(4)] = name
    for (preset, batch), v in sorted(cells.items()):
        def ms(key):
            r = res(v.get(key, "")) or {}
            return r.get("ms_per_step")
        row = {"preset": preset, "batch": batch, "ms": {k: ms(k) for k in sorted(v)},
               "errors": {k: steps[n]["stderr_tail"][-300:] for k, n in v.items() if not steps[n]["ok"]}}
        counts = {}
        for k in v:
            r = res(v[k]) or {}
            if k.startswith("ours_") and r.get("per_step"):
                counts[k] = {"per_step": r["per_step"], "graph_nodes": r.get("graph_nodes")}
        row["ours_counts"] = counts
        row["ratios"] = {
            "graphs_on_over_compile_ro_fp32": ratio(ms("ours_graphson_tf32off"), ms("torch_compilero_tf32off")),
            "graphs_on_over_compile_ro_tf32": ratio(ms("ours_graphson_tf32on"), ms("torch_compilero_tf32on")),
            "graphs_off_over_eager_fp32": ratio(ms("ours_graphsoff_tf32off"), ms("torch_eager_tf32off")),
            "graphs_on_over_eager_fp32": ratio(ms("ours_graphson_tf32off"), ms("torch_eager_tf32off")),
            "graphs_on_over_graphs_off": ratio(ms("ours_graphson_tf32off"), ms("ours_graphsoff_tf32off")),
            "tf32_on_over_off": ratio(ms("ours_graphson_tf32on"), ms("ours_graphson_tf32off")),
        }
        throughput.append(row)

    report = {
        "card": card, "device": args.device,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seconds": args.seconds, "nvtx_library": args.nvtx or None,
        "nvidia_smi": smi,
        "selftest_summary": None if selftest is None else {k: selftest.get(k) for k in ("device", "ops", "cases", "passed", "failed", "uncovered")},
        "compute_sanitizer": sanitizer or None,
        "kernels": res("bench_kernels"),
        "ceilings": res("torch_ceilings"),
        "comparisons": comparisons,
        "throughput": throughput,
        "ratio_note": "ours / pytorch: below 1 means ours is faster; ms are medians of synchronised steps",
        "steps": steps,
    }
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)

    print(f"card: {card}  device: {args.device}  date: {report['date']}  total {args.seconds} s")
    for name, s in steps.items():
        print(f"  {'ok ' if s['ok'] else 'BAD'} {name:<34} rc {s['rc']:<7} {s['seconds']:7.1f} s")
    if selftest:
        print(f"selftest: {selftest['cases']} cases, {selftest['passed']} passed, {selftest['failed']} failed, {len(selftest['uncovered'])} ops uncovered")
    for tool, r in sanitizer.items():
        print(f"compute-sanitizer {tool}: {r['errors']} errors (rc {r['rc']})" + "".join("\n    " + l for l in r["first"][:5]))
    k = res("bench_kernels")
    if k:
        for r in k.get("rows", []):
            med = r.get("median_ms")
            frac = r.get("fraction_of_floor")
            print(f"  {r['config']:<18} {r['kernel']:<17} {'-' if med is None else f'{med:.4f} ms':>12}  "
                  f"{'' if frac is None else f'{frac:.1%} of floor'}")
    for t in throughput:
        print(f"  throughput {t['preset']} b{t['batch']}: " + "  ".join(f"{k} {v}" for k, v in t["ms"].items()))
        print("    ratios: " + "  ".join(f"{k} {v}" for k, v in t["ratios"].items() if v is not None))
    for c in comparisons:
        print(f"  {c['config']:<32} ours {c['ours_ms']}  eager {c['pytorch_eager_ms']}  compile {c['pytorch_compile_ms']}  "
              f"ours/eager {c['ours_over_eager']}  ours/compile {c['ours_over_compile']}")


if __name__ == "__main__":
    main()
