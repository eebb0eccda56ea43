"""bfloat16 autocast against float32: test Recall@N per seed, mean ± std, and the paired
difference (amp - fp32) with its seed-level 95% t-interval, from the cells beside this script."""
import glob
import json
import os
import statistics

from scipy import stats

NS = (10, 20, 50, 100, 200, 500)


def arms():
    by_arm = {"fp32": {}, "amp": {}}
    for path in glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "cells", "*.json")):
        record = json.load(open(path))
        arm = "amp" if record["cell"]["method_settings"].get("enable_amp") else "fp32"
        run = record["run"]
        by_arm[arm][record["cell"]["seed"]] = (run["test_result"], run["best_epoch"], run["stopped"])
    return by_arm


def main():
    by_arm = arms()
    seeds = sorted(by_arm["fp32"])
    assert seeds == sorted(by_arm["amp"]), by_arm
    print("seed  arm   best_epoch stopped     " + "  ".join(f"R@{n:<5}" for n in NS))
    for seed in seeds:
        for arm in ("fp32", "amp"):
            result, epoch, stopped = by_arm[arm][seed]
            print(f"{seed}  {arm:<5} {epoch:>10} {stopped:<11} " + "  ".join(f"{100 * result[f'recall@{n}']:6.2f}" for n in NS))
    print("\n| N | fp32 | amp (bf16) | amp - fp32 (points), 95% t CI over seeds |\n|---|---|---|---|")
    for n in NS:
        fp = [100 * by_arm["fp32"][s][0][f"recall@{n}"] for s in seeds]
        bf = [100 * by_arm["amp"][s][0][f"recall@{n}"] for s in seeds]
        diff = [b - f for b, f in zip(bf, fp)]
        mean, sd = statistics.mean(diff), statistics.stdev(diff)
        half = stats.t.ppf(0.975, len(diff) - 1) * sd / len(diff) ** 0.5
        print(f"| {n} | {statistics.mean(fp):.2f} ± {statistics.stdev(fp):.2f} | {statistics.mean(bf):.2f} ± "
              f"{statistics.stdev(bf):.2f} | {mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}] |")


if __name__ == "__main__":
    main()
