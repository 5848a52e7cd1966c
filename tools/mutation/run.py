#!/usr/bin/env python3
"""Mutation test of the emulator's sanitizer: plants each kernel bug of tools/mutation/mutants.txt
one at a time in a copy of native/ (build/mutation/src), rebuilds libmvq_emu there, runs the
conformance cases of the ops that use the kernel on cuda-emu (`mvq selftest --device cuda-emu
--filter ...`, every checker on) and reports which mutants were caught, and by what: a checker's
report (memcheck, racecheck, synccheck, initcheck) or a wrong result. The score is caught / all.

  python3 tools/mutation/run.py                 # every mutant
  python3 tools/mutation/run.py --quick         # the subset tagged quick (run by tools/scripts/test.sh)
  python3 tools/mutation/run.py --only ID ...   # chosen mutants
  python3 tools/mutation/run.py --json out.json # also write the results as JSON

Exit code 0 when every mutant was caught and the unmutated kernels pass; 1 otherwise.
The working tree is never modified."""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORK = os.path.join(ROOT, "build", "mutation")
SRC = os.path.join(WORK, "src")
BLD = os.path.join(WORK, "build")
CLI = os.path.join(ROOT, "tools", "Mvq.Cli", "bin", "Release", "net10.0", "mvq.dll")
CHECKERS = ("memcheck", "initcheck", "racecheck", "synccheck")


def parse_mutants(path):
    mutants, cur = [], None
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            m = re.match(r"^\[([A-Za-z0-9_]+)\]\s*(.*)$", line)
            if m:
                cur = {"id": m.group(1), "tags": m.group(2).split(), "edits": [], "line": n}
                mutants.append(cur)
                continue
            if cur is None:
                raise SystemExit(f"error: {path}:{n}: text before the first [mutant] header")
            for key in ("file", "what", "ops"):
                if line.startswith(key + ":"):
                    cur[key] = line[len(key) + 1:].strip()
                    break
            else:
                if line.startswith("-") or line.startswith("+"):
                    text = line[1:]
                    if text.startswith(" "):
                        text = text[1:]
                    text = text.replace("\\n", "\n")
                    if line[0] == "-":
                        cur["edits"].append([text, None])
                    elif not cur["edits"] or cur["edits"][-1][1] is not None:
                        raise SystemExit(f"error: {path}:{n}: '+' without a '-' before it")
                    else:
                        cur["edits"][-1][1] = text
                else:
                    raise SystemExit(f"error: {path}:{n}: cannot read this line")
    for m in mutants:
        if not all(k in m for k in ("file", "what", "ops")) or not m["edits"] or any(e[1] is None for e in m["edits"]):
            raise SystemExit(f"error: {path}:{m['line']}: mutant {m['id']} needs file, what, ops and -/+ pairs")
    return mutants


def sync_tree():
    """Copies CMakeLists.txt and native/ into SRC, touching only files whose bytes differ
    (so the mutation build stays incremental between runs)."""
    os.makedirs(SRC, exist_ok=True)
    wanted = set()
    pairs = [("CMakeLists.txt", os.path.join(ROOT, "CMakeLists.txt"))]
    for d, _, files in os.walk(os.path.join(ROOT, "native")):
        for fn in files:
            full = os.path.join(d, fn)
            pairs.append((os.path.relpath(full, ROOT), full))
    for rel, full in pairs:
        wanted.add(rel)
        dst = os.path.join(SRC, rel)
        with open(full, "rb") as f:
            data = f.read()
        if os.path.exists(dst):
            with open(dst, "rb") as f:
                if f.read() == data:
                    continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(dst, "wb") as f:
            f.write(data)
    for d, _, files in os.walk(os.path.join(SRC, "native")):
        for fn in files:
            rel = os.path.relpath(os.path.join(d, fn), SRC)
            if rel not in wanted:
                os.remove(os.path.join(d, fn))


def build():
    if not os.path.exists(os.path.join(BLD, "CMakeCache.txt")):
        r = subprocess.run(["cmake", "-S", SRC, "-B", BLD, "-DCMAKE_BUILD_TYPE=Release", "-DMVQ_EMU_TESTS=OFF"],
                           capture_output=True, text=True)
        if r.returncode:
            return False, r.stdout + r.stderr
    r = subprocess.run(["cmake", "--build", BLD, "-j", str(os.cpu_count() or 2), "--target", "mvq_emu"],
                       capture_output=True, text=True)
    return r.returncode == 0, r.stdout + r.stderr


def selftest(ops, timeout):
    env = dict(os.environ, MVQ_EMU_LIB=os.path.join(BLD, "native", "libmvq_emu.so"), MVQ_REQUIRE_EMU="1")
    env.pop("MVQ_EMU_CHECKS", None)  # every checker on, as for the conformance table
    env.pop("MVQ_EMU_STATS", None)
    cmd = ["dotnet", CLI, "selftest", "--device", "cuda-emu", "--json", "--filter"] + ops.split()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
        return r.returncode, r.stdout + r.stderr
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return "timeout", out


def first_report(out):
    """The first emulator report (or failing case) in the selftest output, shortened."""
    m = re.search(r"\[emulator: (.*?)(?:\"|$)", out, re.M)
    if m:
        return m.group(1)[:400]
    m = re.search(r"nmse[^\n\"]*", out)
    return m.group(0)[:200] if m else ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="only the mutants tagged quick")
    ap.add_argument("--only", nargs="+", metavar="ID", help="only these mutants")
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per selftest run")
    args = ap.parse_args()

    mutants = parse_mutants(os.path.join(ROOT, "tools", "mutation", "mutants.txt"))
    if args.only:
        unknown = set(args.only) - {m["id"] for m in mutants}
        if unknown:
            raise SystemExit(f"error: tools/mutation/mutants.txt: no mutant {', '.join(sorted(unknown))}")
        mutants = [m for m in mutants if m["id"] in args.only]
    if args.quick:
        mutants = [m for m in mutants if "quick" in m["tags"]]
    if not os.path.exists(CLI):
        r = subprocess.run(["dotnet", "build", os.path.join(ROOT, "tools", "Mvq.Cli"), "-c", "Release"], capture_output=True, text=True)
        if r.returncode:
            print(r.stdout[-3000:], file=sys.stderr)
            raise SystemExit("error: tools/Mvq.Cli: build failed")

    t0 = time.time()
    sync_tree()
    ok, log = build()
    if not ok:
        print(log[-4000:], file=sys.stderr)
        raise SystemExit("error: build/mutation: the unmutated emulator does not build")
    # The unmutated kernels must pass the same cases, or a "caught" would mean nothing.
    all_ops = " ".join(sorted({w for m in mutants for w in m["ops"].split()}))
    rc, out = selftest(all_ops, args.timeout)
    if rc != 0:
        print(out[-4000:], file=sys.stderr)
        raise SystemExit(f"error: the unmutated kernels fail `selftest --filter {all_ops}` on cuda-emu")

    results = []
    for m in mutants:
        path = os.path.join(SRC, m["file"])
        with open(path, encoding="utf-8") as f:
            original = f.read()
        text = original
        problem = None
        for old, new in m["edits"]:
            if text.count(old) != 1:
                problem = f"{m['file']}: the text to replace occurs {text.count(old)} times: {old!r}"
                break
            text = text.replace(old, new)
        res = {"id": m["id"], "file": m["file"], "what": m["what"], "ops": m["ops"], "quick": "quick" in m["tags"]}
        start = time.time()
        if problem:
            res.update(outcome="invalid", caught=False, by="", report=problem)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            try:
                ok, log = build()
                if not ok:
                    res.update(outcome="invalid", caught=False, by="", report="the mutant does not compile: " + log[-300:])
                else:
                    rc, out = selftest(m["ops"], args.timeout)
                    by = next((c for c in CHECKERS if c + ":" in out), "")
                    if rc == 0:
                        res.update(outcome="survived", caught=False, by="", report="")
                    elif rc == "timeout":
                        res.update(outcome="caught", caught=True, by="timeout", report=f"selftest did not finish in {args.timeout} s")
                    else:
                        res.update(outcome="caught", caught=True, by=by or "wrong result", report=first_report(out))
            finally:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(original)
        res["seconds"] = round(time.time() - start, 1)
        results.append(res)
        print(f"{res['id']:<30} {res['outcome']:<9} {res['by']:<13} {res['seconds']:>6.1f} s  {res['report'][:160]}", file=sys.stderr)

    ok, _ = build()  # leave the mutation build unmutated
    caught = sum(r["caught"] for r in results)
    summary = {"mutants": len(results), "caught": caught, "score": round(caught / len(results), 3) if results else None,
               "by": {k: sum(r["by"] == k for r in results) for k in sorted({r["by"] for r in results if r["caught"]})},
               "seconds": round(time.time() - t0, 1), "results": results}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2)
    print(f"mutation score: {caught}/{len(results)} caught ({', '.join(f'{v} by {k}' for k, v in summary['by'].items())}) "
          f"in {summary['seconds']} s")
    return 0 if results and caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
