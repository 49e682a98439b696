"""The report's charts (matplotlib, Agg): each is drawn only when its numbers exist; returns the file names."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench.targets import MAX_P99_MS_AT_16, OURS, stale_image

MB = 1e6


def draw_all(results: dict, folder: Path) -> dict[str, str]:
    """{chart: file name in `folder`} for every chart that has data."""
    folder.mkdir(parents=True, exist_ok=True)
    drawn = {}
    for name, draw in CHARTS.items():
        if _save(results, draw, folder / f"{name}.png"):
            drawn[name] = f"{name}.png"
    return drawn


def _save(results: dict, draw, path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(10, 4.5))
    try:
        if not draw(results, fig):
            return False
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        return True
    finally:
        plt.close(fig)


def accuracy_chart(results: dict, fig) -> bool:
    accuracy = results.get("accuracy", {})
    detectors, sets = accuracy.get("detectors", {}), [s["name"] for s in accuracy.get("sets", [])]
    if not detectors or not sets:
        return False
    ax = fig.add_subplot()
    width = 0.8 / len(detectors)
    for i, (name, detector) in enumerate(detectors.items()):
        values = [100 * detector["scores"][s]["accuracy"] for s in sets]
        ax.bar(
            [x + (i - (len(detectors) - 1) / 2) * width for x in range(len(sets))],
            values,
            width,
            label=name,
            edgecolor="black" if name == OURS else None,
        )
    ax.set_xticks(range(len(sets)), sets)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(max(0, min(100 * d["scores"][s]["accuracy"] for d in detectors.values() for s in sets) - 5), 100)
    ax.set_title("Accuracy on the test split and on short slices of it")
    ax.legend(fontsize=7, ncol=len(detectors), loc="upper center", bbox_to_anchor=(0.5, -0.08))
    return True


def speed_chart(results: dict, fig) -> bool:
    detectors = results.get("speed", {}).get("detectors", {})
    measured = {name: d for name, d in detectors.items() if "single_thread" in d}
    if not measured:
        return False
    ax = fig.add_subplot()
    names = list(measured)
    for offset, key, label in ((-0.2, "single_thread", "1 thread"), (0.2, "all_cores", "all cores")):
        values = [measured[n].get(key) or 0 for n in names]
        bars = ax.barh([y + offset for y in range(len(names))], values, 0.4, label=label)
        ax.bar_label(bars, labels=[f"{v:,.0f}" if v else "" for v in values], fontsize=7)
    ax.set_yticks(range(len(names)), names)
    ax.set_xscale("log")
    ax.set_xlabel("texts per second (log scale)")
    ax.set_title("In-process speed")
    ax.legend()
    return True


def serving_series(results: dict) -> dict[str, list[dict]]:
    """Runs per line of the serving charts: each server and runtime that was measured."""
    series = {}
    bento = results.get("serving", {}).get("bentoml", {})
    for backend, label in (("onnx", "bentoml serve, int8 ONNX"), ("torch", "bentoml serve, torch fp32 on CPU")):
        series[label] = [r for r in bento.get("runs", []) if r["backend"] == backend]
    image = "CPU image" + (" (another model: rebuild it)" if stale_image(results) else "")
    series[image] = results.get("containers", {}).get("cpu_serving", {}).get("runs", [])
    return {label: runs for label, runs in series.items() if runs}


def throughput_chart(results: dict, fig) -> bool:
    series = serving_series(results)
    if not series:
        return False
    detect, batch = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for i, (label, runs) in enumerate(series.items()):
        _line(detect, [r for r in runs if r["route"] == "/detect"], "concurrency", "rps", label, f"C{i}")
        _line(batch, [r for r in runs if r["route"] == "/detect_batch"], "batch", "texts_per_s", label, f"C{i}")
    detect.set(xlabel="concurrent clients", ylabel="requests per second", title="/detect")
    batch.set(xlabel="texts per call", ylabel="texts per second", title="/detect_batch")
    for ax in (detect, batch):
        ax.set_xscale("log", base=2)
        ax.legend(fontsize=7)
    return True


def latency_chart(results: dict, fig) -> bool:
    series = serving_series(results)
    if not series:
        return False
    ax = fig.add_subplot()
    for i, (label, runs) in enumerate(series.items()):  # one colour per server, one line style per percentile
        detect = [r for r in runs if r["route"] == "/detect"]
        for key, style in (("p50_ms", ":"), ("p95_ms", "--"), ("p99_ms", "-")):
            _line(ax, detect, "concurrency", key, f"{label} {key[:3]}", f"C{i}", style)
    ax.axhline(MAX_P99_MS_AT_16, color="red", linewidth=0.8)
    ax.text(1, MAX_P99_MS_AT_16, f" p99 target at c=16: {MAX_P99_MS_AT_16} ms", color="red", fontsize=7, va="bottom")
    ax.set(xlabel="concurrent clients", ylabel="latency (ms, log scale)", title="/detect latency percentiles")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.legend(fontsize=6, ncol=2)
    return True


def _line(ax, runs: list[dict], x: str, y: str, label: str, color: str, style: str = "-") -> None:
    if runs:
        runs = sorted(runs, key=lambda r: r[x])
        ax.plot([r[x] for r in runs], [r[y] for r in runs], style, color=color, marker="o", label=label)


def images_chart(results: dict, fig) -> bool:
    images = [i for i in results.get("containers", {}).get("images", {}).values() if i.get("present")]
    if not images:
        return False
    ax = fig.add_subplot()
    kinds = [
        k for k in (("size", "uncompressed"), ("compressed", "compressed (pull)")) if all(i.get(k[0]) for i in images)
    ]
    width = 0.8 / len(kinds)
    for n, (key, label) in enumerate(kinds):
        values = [i[key] / MB for i in images]
        bars = ax.bar([x + (n - (len(kinds) - 1) / 2) * width for x in range(len(images))], values, width, label=label)
        ax.bar_label(bars, labels=[f"{v:,.0f} MB" for v in values], fontsize=8)
    ax.set_xticks(range(len(images)), [i["image"] for i in images])
    ax.set_yscale("log")
    ax.set_ylim(bottom=10)
    ax.set_ylabel("MB (log scale)")
    ax.set_title("Image sizes")
    ax.legend()
    return True


# {chart: its drawer}, in the order the report shows them
CHARTS: dict[str, Callable[[dict, object], bool]] = {
    "accuracy": accuracy_chart,
    "speed": speed_chart,
    "throughput": throughput_chart,
    "latency": latency_chart,
    "images": images_chart,
}
