"""Measured ceilings of the device through PyTorch, for the report's floors: a large device-to-device
copy (GB/s, bytes read + written) and an FP32 matrix product with TF32 off (TFLOP/s). Median of
repeats after a warm-up, timed with CUDA events (perf_counter + synchronize on the CPU).

Usage: python3 tools/gpu/ceilings.py [--device cuda|cpu]   (prints one JSON line)
"""
import argparse
import json
import time

import torch


def timed(fn, dev, reps):
    fn()
    times = []
    for _ in range(reps):
        if dev.type == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cuda")
    args = p.parse_args()
    dev = torch.device(args.device)
    gpu = dev.type == "cuda"
    if gpu:
        torch.backends.cuda.matmul.allow_tf32 = False
    n_copy = (1 << 28) if gpu else (1 << 22)       # floats: 1 GiB on a GPU
    src = torch.rand(n_copy, device=dev)
    dst = torch.empty_like(src)
    t_copy = timed(lambda: dst.copy_(src), dev, 10)
    n = 8192 if gpu else 512
    a = torch.rand(n, n, device=dev) - 0.5
    b = torch.rand(n, n, device=dev) - 0.5
    t_mm = timed(lambda: torch.mm(a, b), dev, 10)
    print(json.dumps({
        "device": str(dev), "device_name": torch.cuda.get_device_name(dev) if gpu else "cpu",
        "copy_gbs": round(2 * 4 * n_copy / t_copy / 1e9, 1), "copy_bytes": 2 * 4 * n_copy,
        "sgemm_tflops": round(2 * n ** 3 / t_mm / 1e12, 2), "sgemm_n": n, "tf32": False,
        "torch_version": torch.__version__,
    }))


if __name__ == "__main__":
    main()
