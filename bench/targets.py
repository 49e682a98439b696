"""The targets of the benchmark, judged from the results: PASS, MISS (with the reason) or NOT MEASURED.

An image that carries another model than the one benchmarked says nothing about this model's serving:
its numbers are shown, but the target is NOT MEASURED until the image is rebuilt.
"""
from __future__ import annotations

OURS = "ours int8 ONNX"  # what the CPU runner and the CPU image serve
MIN_BATCH_TEXTS_PER_S = 1000
MAX_P99_MS = 50
P99_CONCURRENCY = 16
MAX_COLD_START_S = 3
MAX_CPU_TO_GPU = 1 / 20
PASS, MISS, NOT_MEASURED = "PASS", "MISS", "NOT MEASURED"


def target(name: str, goal: str, status: str, measured: str = "", reason: str = "") -> dict:
    return {"name": name, "goal": goal, "status": status, "measured": measured, "reason": reason}


def verdict(name: str, goal: str, passed: bool, measured: str, reason: str, stale: str = "") -> dict:
    if stale:
        return target(name, goal, NOT_MEASURED, measured, stale)
    return target(name, goal, PASS if passed else MISS, measured, "" if passed else reason)


def evaluate(results: dict) -> list[dict]:
    return [*accuracy_targets(results.get("accuracy", {})), batch_throughput_target(results),
            latency_target(results), cold_start_target(results), size_ratio_target(results)]


def accuracy_targets(accuracy: dict) -> list[dict]:
    detectors = accuracy.get("detectors", {})
    ours = detectors.get(OURS)
    peers = {name: d for name, d in detectors.items() if d.get("kind") == "peer"}
    out = []
    for set_name in [s["name"] for s in accuracy.get("sets", [])]:
        name, goal = f"accuracy: {set_name}", "above every peer"
        if not ours or not peers:
            out.append(target(name, goal, NOT_MEASURED, reason=accuracy.get("error") or "no peer installed"))
            continue
        best = max(peers, key=lambda p: peers[p]["scores"][set_name]["accuracy"])
        mine, theirs = ours["scores"][set_name], peers[best]["scores"][set_name]
        out.append(verdict(name, goal, mine["accuracy"] > theirs["accuracy"],
                           f"{mine['accuracy']:.2%} vs {best} {theirs['accuracy']:.2%}",
                           accuracy_gap(best, mine, theirs)))
    return out


def accuracy_gap(best: str, mine: dict, theirs: dict, languages: int = 3) -> str:
    points = 100 * (theirs["accuracy"] - mine["accuracy"])
    lead = f"{best} is {points:.1f} points ahead" if points >= 0.05 else f"tied with {best}"
    gaps = sorted(((theirs["per_language"][lang] - acc, lang) for lang, acc in mine["per_language"].items()),
                  reverse=True)[:languages]
    where = ", ".join(f"{lang} {mine['per_language'][lang]:.0%} vs {theirs['per_language'][lang]:.0%}"
                      for gap, lang in gaps if gap > 0)
    return lead + (f"; most on {where}" if where else "")


def stale_image(results: dict, kind: str = "cpu") -> str:
    """Why an image's numbers are not this model's ('' when the image carries the benchmarked model)."""
    labels = results.get("containers", {}).get("images", {}).get(kind, {}).get("labels", {})
    carried, model = labels.get("langdetect.onnx.mlflow_run_id"), results.get("model", {})
    if not carried or not model.get("run_id") or carried == model["run_id"]:
        return ""
    return (f"the image carries MLflow version {labels.get('langdetect.onnx.mlflow_version', '?')} (run "
            f"{carried[:8]}), not the benchmarked version {model.get('version')}: rebuild it with "
            f"`langdetect images build` (or `langdetect bench --build-images`)")


def why_not_measured(results: dict, kind: str = "cpu") -> str:
    containers = results.get("containers", {})
    image = containers.get("images", {}).get(kind, {})
    return (containers.get("error") or containers.get("reason") or image.get("reason") or image.get("error")
            or containers.get("cpu_serving", {}).get("error") or "not measured")


def serving_source(results: dict) -> tuple[dict | None, str, str]:
    """The CPU image's runs when they are this model's, else `bentoml serve`'s; a label; why not the image."""
    image = results.get("containers", {}).get("cpu_serving")
    stale = stale_image(results)
    if image and "runs" in image and not stale:
        return image, "CPU image", ""
    why = stale or why_not_measured(results)
    bento = results.get("serving", {}).get("bentoml")
    if bento and "runs" in bento:
        return bento, "bentoml serve; the CPU image was not measured with this model", why
    return None, "", why


def runs_of(source: dict, route: str, backend: str = "cpu") -> list[dict]:
    return [r for r in source["runs"] if r["route"] == route and r["backend"] == backend]


def batch_throughput_target(results: dict) -> dict:
    name, goal = "/detect_batch texts/s, CPU image", f">= {MIN_BATCH_TEXTS_PER_S:,}"
    image = results.get("containers", {}).get("cpu_serving")
    if not image or "runs" not in image:
        return target(name, goal, NOT_MEASURED, reason=why_not_measured(results))
    best = max(runs_of(image, "/detect_batch"), key=lambda r: r["texts_per_s"])
    measured = f"{best['texts_per_s']:,.0f} texts/s (batch {best['batch']}, {results.get('machine', {}).get('cores')} cores)"
    reason = f"best at batch {best['batch']} with {best['concurrency']} concurrent calls"
    in_process = results.get("speed", {}).get("detectors", {}).get(OURS, {}).get("all_cores")
    if in_process:
        reason += (f"; the int8 model alone does {in_process:,.0f} texts/s in process on all cores, so serving "
                   f"keeps {best['texts_per_s'] / in_process:.0%} of it (HTTP, JSON and the load generator "
                   f"share the same cores)")
    return verdict(name, goal, best["texts_per_s"] >= MIN_BATCH_TEXTS_PER_S, measured, reason, stale_image(results))


def latency_target(results: dict) -> dict:
    name, goal = f"/detect p99 at concurrency {P99_CONCURRENCY}", f"< {MAX_P99_MS} ms"
    source, label, why = serving_source(results)
    runs = [r for r in runs_of(source, "/detect") if r["concurrency"] == P99_CONCURRENCY] if source else []
    if not runs:
        return target(name, goal, NOT_MEASURED, reason=why or "no run at that concurrency")
    run = runs[0]
    measured = f"{run['p99_ms']:,.0f} ms ({label}; p50 {run['p50_ms']:,.0f} ms, {run['errors']} errors)"
    reason = (f"requests queue: at {run['rps']:,.0f} requests/s, {P99_CONCURRENCY} clients wait "
              f"{1000 * P99_CONCURRENCY / run['rps']:,.0f} ms per request on average (concurrency / throughput); "
              f"p99 < {MAX_P99_MS} ms needs well over {1000 * P99_CONCURRENCY / MAX_P99_MS:,.0f} requests/s"
              + (f"; {run['errors']} requests failed" if run["errors"] else ""))
    return verdict(name, goal, run["p99_ms"] < MAX_P99_MS and not run["errors"], measured, reason)


def cold_start_target(results: dict) -> dict:
    name, goal = "CPU image cold start to /readyz (median)", f"< {MAX_COLD_START_S} s"
    cpu = results.get("containers", {}).get("images", {}).get("cpu", {})
    if "cold_start_median_s" not in cpu:
        return target(name, goal, NOT_MEASURED, reason=why_not_measured(results))
    runs = cpu["cold_start_s"]
    measured = f"{cpu['cold_start_median_s']:.1f} s (median of {len(runs)}: {', '.join(f'{s:.1f}' for s in runs)})"
    return verdict(name, goal, cpu["cold_start_median_s"] < MAX_COLD_START_S, measured,
                   "/readyz answers only once BentoML has started its API and runner processes and the runner "
                   "has loaded the model; every start pays Python imports and the ONNX session set-up",
                   stale_image(results))


def size_ratio_target(results: dict) -> dict:
    """Judged even for a stale image: the model is about 1% of either image."""
    name, goal = "CPU image size / GPU image size (uncompressed)", f"<= 1/{1 / MAX_CPU_TO_GPU:.0f}"
    images = results.get("containers", {}).get("images", {})
    cpu, gpu = images.get("cpu", {}), images.get("gpu", {})
    if not cpu.get("present") or not gpu.get("present"):
        return target(name, goal, NOT_MEASURED, reason=why_not_measured(results, "gpu" if cpu.get("present") else "cpu"))
    measured = f"1/{gpu['size'] / cpu['size']:.1f}: {cpu['size'] / 1e6:,.0f} MB vs {gpu['size'] / 1e6:,.0f} MB"
    if cpu.get("compressed") and gpu.get("compressed"):
        measured += f" (compressed 1/{gpu['compressed'] / cpu['compressed']:.1f})"
    layers = "; ".join(f"{layer['size'] / 1e6:,.0f} MB {step(layer['created_by'])}"
                       for layer in cpu.get("largest_layers", []) if layer["size"] >= 1e6)
    return verdict(name, goal, cpu["size"] <= MAX_CPU_TO_GPU * gpu["size"], measured,
                   f"the CPU image would have to be at most {MAX_CPU_TO_GPU * gpu['size'] / 1e6:,.0f} MB; "
                   f"its largest layers: {layers}")


def step(created_by: str) -> str:
    from images.report import short_command

    return f"({short_command(created_by, width=60)})"
