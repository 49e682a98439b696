"""The targets of the benchmark, judged from the results: PASS, MISS (with the reason) or NOT MEASURED.

An image that carries another model than the one benchmarked says nothing about this model's serving:
its numbers are shown, but the target is NOT MEASURED until the image is rebuilt.
"""

from __future__ import annotations

OURS = "ours int8 ONNX"  # what the CPU image serves
P99_CONCURRENCY = 16
MIN_RPS_AT_16 = 1000
MAX_P99_MS_AT_16 = 25
MAX_P99_MS_AT_1 = 5
MIN_BATCH_SHARE = 0.8  # /detect_batch texts/s over the int8 model's own in-process texts/s, same cores
MAX_RSS_MB = 300
MAX_COLD_START_S = 1.0
MAX_RECOVERY_S = 5
MAX_CPU_TO_GPU = 1 / 20
MAX_CPU_IMAGE_MB, MAX_CPU_IMAGE_COMPRESSED_MB = 200, 80
MAX_FETCH_S = 3.0
MIN_PULL_SPEEDUP = 20
MODELLESS_SLACK_MB = 3  # model-less = baked - model, give or take the bytecode of the request path
PASS, MISS, NOT_MEASURED = "PASS", "MISS", "NOT MEASURED"


def target(name: str, goal: str, status: str, measured: str = "", reason: str = "") -> dict:
    return {"name": name, "goal": goal, "status": status, "measured": measured, "reason": reason}


def verdict(name: str, goal: str, passed: bool, measured: str, reason: str, stale: str = "") -> dict:
    if stale:
        return target(name, goal, NOT_MEASURED, measured, stale)
    return target(name, goal, PASS if passed else MISS, measured, "" if passed else reason)


def evaluate(results: dict) -> list[dict]:
    return [
        *accuracy_targets(results.get("accuracy", {})),
        *ood_targets(results.get("accuracy", {})),
        training_time_target(results.get("training") or {}),
        *serving_targets(results),
        batch_share_target(results),
        rss_target(results),
        cold_start_target(results),
        recovery_target(results),
        drain_target(results),
        fuzz_target(results),
        size_ratio_target(results),
        *diet_targets(results),
        modelless_target(results),
        fetch_target(results),
        pull_target(results),
        restart_target(results),
    ]


def fleet(results: dict) -> dict:
    return results.get("containers", {}).get("fleet") or {}


def diet_targets(results: dict) -> list[dict]:
    cpu = results.get("containers", {}).get("images", {}).get("cpu", {})
    name, goal = "baked CPU image size", f"<= {MAX_CPU_IMAGE_MB} MB, <= {MAX_CPU_IMAGE_COMPRESSED_MB} MB compressed"
    if not cpu.get("present") or not cpu.get("compressed"):
        return [
            target(
                name,
                goal,
                NOT_MEASURED,
                reason=cpu.get("reason") or cpu.get("compressed_note") or why_not_measured(results),
            )
        ]
    size, packed = cpu["size"] / 1e6, cpu["compressed"] / 1e6
    return [
        verdict(
            name,
            goal,
            size <= MAX_CPU_IMAGE_MB and packed <= MAX_CPU_IMAGE_COMPRESSED_MB,
            f"{size:,.1f} MB, {packed:,.1f} MB compressed",
            "see the layers in the Images section",
            stale_image(results),
        )
    ]


def modelless_target(results: dict) -> dict:
    images = results.get("containers", {}).get("images", {})
    cpu, bare = images.get("cpu", {}), images.get("cpu-modelless", {})
    model = results.get("model", {}).get("onnx_bundle_bytes")
    name, goal = "model-less CPU image", "the baked size minus the model"
    if not (cpu.get("present") and bare.get("present") and model):
        return target(name, goal, NOT_MEASURED, reason=bare.get("reason") or cpu.get("reason") or "no model size")
    expected = (cpu["size"] - model) / 1e6
    return verdict(
        name,
        goal,
        abs(bare["size"] / 1e6 - expected) <= MODELLESS_SLACK_MB,
        f"{bare['size'] / 1e6:,.1f} MB vs {cpu['size'] / 1e6:,.1f} - {model / 1e6:.1f} = {expected:,.1f} MB",
        f"more than {MODELLESS_SLACK_MB} MB apart",
        stale_image(results),
    )


def fetch_target(results: dict) -> dict:
    name, goal = "fetch-model on loopback (worst of the runs)", f"<= {MAX_FETCH_S:.0f} s"
    fetch = fleet(results).get("fetch") or {}
    if "max_s" not in fetch:
        return target(
            name,
            goal,
            NOT_MEASURED,
            reason=fetch.get("error") or fleet(results).get("error") or why_not_measured(results),
        )
    return verdict(
        name,
        goal,
        fetch["max_s"] <= MAX_FETCH_S,
        f"{fetch['max_s']:.2f} s ({fetch['bytes'] / 1e6:.1f} MB, median {fetch['median_s']:.2f} s)",
        "slower than the target",
    )


def pull_target(results: dict) -> dict:
    name, goal = "cold pull, CPU vs GPU image", f"CPU >= {MIN_PULL_SPEEDUP}x faster"
    pulls = fleet(results).get("registry") or {}
    if "cpu" not in pulls or "gpu" not in pulls:
        return target(name, goal, NOT_MEASURED, reason=pulls.get("error") or "both images were not pulled")
    speedup = pulls["gpu"]["pull_s"] / pulls["cpu"]["pull_s"]
    return verdict(
        name,
        goal,
        speedup >= MIN_PULL_SPEEDUP,
        f"{speedup:.1f}x: CPU {pulls['cpu']['pull_s']:.1f} s, GPU {pulls['gpu']['pull_s']:.1f} s",
        "loopback pulls are bound by unpacking, not by the network",
    )


def restart_target(results: dict) -> dict:
    name, goal = "a pod restart fetches @champion, no image built", "the champion's version, 0 images built"
    restart, version = fleet(results).get("restart") or {}, fleet(results).get("champion_version")
    if "served_version" not in restart:
        return target(
            name, goal, NOT_MEASURED, reason=restart.get("error") or fleet(results).get("error") or "not measured"
        )
    built = restart.get("images_built", 0)
    return verdict(
        name,
        goal,
        restart["served_version"] == version and built == 0,
        f"version {restart['served_version']}, ready {restart['restart_to_ready_s']:.1f} s after the "
        f"restart, {built} images built",
        f"served version {restart['served_version']}, champion {version}, {built} images built",
    )


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
        out.append(
            verdict(
                name,
                goal,
                mine["accuracy"] > theirs["accuracy"],
                f"{mine['accuracy']:.2%} vs {best} {theirs['accuracy']:.2%}",
                accuracy_gap(best, mine, theirs),
            )
        )
    return out


TRAINING_BUDGET_S = 15 * 60  # the default profile, on the 2 cores of the project's machines


def training_time_target(training: dict) -> dict:
    """`langdetect train --profile default`, data to registered version (command_seconds, logged by the run)."""
    name, goal = "default profile: `langdetect train` on 2 cores", f"<= {TRAINING_BUDGET_S // 60} min"
    seconds = training.get("command_seconds")
    if training.get("profile") != "default" or seconds is None:
        why = "the benchmarked version was not trained with the default profile" if training else ""
        return target(name, goal, NOT_MEASURED, reason=why or "its run logged no command_seconds (trained before)")
    on = f" on {training['device']}" if training.get("device") not in (None, "cpu") else ""
    measured = f"{seconds / 60:.1f} min{on} ({training.get('train_seconds', 0) / 60:.1f} min of steps)"
    over = f"{(seconds - TRAINING_BUDGET_S) / 60:.1f} min over"
    return verdict(name, goal, seconds <= TRAINING_BUDGET_S and not on, measured, over if not on else "not on CPU")


def ood_targets(accuracy: dict) -> list[dict]:
    """The main out-of-domain set always (NOT MEASURED when it is missing), the UDHR where it was built."""
    sets = accuracy.get("ood", {})
    out = [ood_target(sets.get("ood"), "out of domain", accuracy.get("error", ""))]
    if sets.get("udhr", {}).get("built"):
        out.append(ood_target(sets["udhr"], "UDHR"))
    return out


def ood_target(record: dict | None, title: str, error: str = "") -> dict:
    """PASS only when ours is strictly above every peer on every slice (or at 100%, where a peer can only
    tie); a MISS lists each slice it is not."""
    record = record or {}
    name, goal = f"{title}: ours above every peer on every slice", "strictly above every peer on each slice"
    detectors = record.get("detectors", {})
    ours, peers = detectors.get(OURS), {n: d for n, d in detectors.items() if d.get("kind") == "peer"}
    if not ours or not peers:
        why = error or record.get("reason") or record.get("error") or ("no peer installed" if ours else "")
        return target(name, goal, NOT_MEASURED, reason=why or "not in these results: rerun `langdetect bench`")
    leads = {s["name"]: lead_over_peers(ours, peers, s["name"]) for s in record["sets"]}
    # a tie at 100% is the ceiling, not a miss: no detector can be above it
    perfect = {s for s in leads if ours["scores"][s]["accuracy"] == 1.0}
    behind = [
        f"{s}: {slice_gap(points, peer)}" for s, (points, peer) in leads.items() if points <= 0 and s not in perfect
    ]
    closest, (points, peer) = min(leads.items(), key=lambda item: item[1][0])
    measured = f"above on {len(leads) - len(behind)} of {len(leads)} slices; closest {closest}: {points:+.1f} vs {peer}"
    return verdict(name, goal, not behind, measured, "; ".join(behind))


def lead_over_peers(ours: dict, peers: dict, slice_name: str) -> tuple[float, str]:
    """Ours minus the best peer on one slice, in points, and that peer."""
    best = max(peers, key=lambda p: peers[p]["scores"][slice_name]["accuracy"])
    return 100 * (ours["scores"][slice_name]["accuracy"] - peers[best]["scores"][slice_name]["accuracy"]), best


def slice_gap(points: float, peer: str) -> str:
    """How far behind (two decimals: a hundredth of a point is a miss too), or a tie."""
    return f"{peer} {-points:.2f} points ahead" if points < 0 else f"tied with {peer}"


def accuracy_gap(best: str, mine: dict, theirs: dict, languages: int = 3) -> str:
    points = 100 * (theirs["accuracy"] - mine["accuracy"])
    lead = f"{best} is {points:.1f} points ahead" if points >= 0.05 else f"tied with {best}"
    gaps = sorted(
        ((theirs["per_language"][lang] - acc, lang) for lang, acc in mine["per_language"].items()), reverse=True
    )[:languages]
    where = ", ".join(
        f"{lang} {mine['per_language'][lang]:.0%} vs {theirs['per_language'][lang]:.0%}"
        for gap, lang in gaps
        if gap > 0
    )
    return lead + (f"; most on {where}" if where else "")


def stale_image(results: dict, kind: str = "cpu") -> str:
    """Why an image's numbers are not this model's ('' when the image carries the benchmarked model)."""
    labels = results.get("containers", {}).get("images", {}).get(kind, {}).get("labels", {})
    carried, model = labels.get("langdetect.onnx.mlflow_run_id"), results.get("model", {})
    if not carried or not model.get("run_id") or carried == model["run_id"]:
        return ""
    return (
        f"the image carries MLflow version {labels.get('langdetect.onnx.mlflow_version', '?')} (run "
        f"{carried[:8]}), not the benchmarked version {model.get('version')}: rebuild it with "
        f"`langdetect images build` (or `langdetect bench --build-images`)"
    )


def why_not_measured(results: dict, kind: str = "cpu") -> str:
    containers = results.get("containers", {})
    image = containers.get("images", {}).get(kind, {})
    return (
        containers.get("error")
        or containers.get("reason")
        or image.get("reason")
        or image.get("error")
        or containers.get("cpu_serving", {}).get("error")
        or "not measured"
    )


def serving_source(results: dict) -> tuple[dict | None, str, str]:
    """wrk's runs on the CPU image when it carries this model, else on `bentoml serve` of the CPU service (the
    default design); a label; why not the image."""
    image = results.get("containers", {}).get("cpu_serving") or {}
    stale = stale_image(results)
    if isinstance(image.get("wrk"), list) and image["wrk"] and not stale:
        return image, "CPU image, wrk -t1", ""
    why = stale or why_not_measured(results)
    variants = results.get("serving", {}).get("designs", {}).get("variants") or []
    if variants and variants[0].get("wrk"):
        return variants[0], "bentoml serve of the CPU service, wrk -t1; the CPU image was not measured", why
    return None, "", why


def runs_of(source: dict, route: str, backend: str = "onnx") -> list[dict]:
    return [r for r in source["runs"] if r["route"] == route and r["backend"] == backend]


def wrk_run(source: dict | None, concurrency: int) -> dict | None:
    runs = (source or {}).get("wrk")
    return next((r for r in runs if r["concurrency"] == concurrency), None) if isinstance(runs, list) else None


def serving_targets(results: dict) -> list[dict]:
    source, label, why = serving_source(results)
    out = []
    run = wrk_run(source, P99_CONCURRENCY)
    name, goal = (
        f"/detect at concurrency {P99_CONCURRENCY}",
        f">= {MIN_RPS_AT_16:,} req/s, p99 <= {MAX_P99_MS_AT_16} ms",
    )
    if run:
        ok = run["rps"] >= MIN_RPS_AT_16 and run["p99_ms"] <= MAX_P99_MS_AT_16 and not run["errors"]
        out.append(
            verdict(
                name,
                goal,
                ok,
                f"{run['rps']:,.0f} req/s, p99 {run['p99_ms']:.1f} ms, {run['errors']} errors ({label})",
                queueing_reason(run),
            )
        )
    else:
        out.append(target(name, goal, NOT_MEASURED, reason=why))
    run = wrk_run(source, 1)
    name, goal = "/detect p99 at concurrency 1", f"<= {MAX_P99_MS_AT_1} ms"
    out.append(
        verdict(
            name,
            goal,
            run["p99_ms"] <= MAX_P99_MS_AT_1,
            f"{run['p99_ms']:.1f} ms (p50 {run['p50_ms']:.1f} ms; {label})",
            "one request at a time: the tail is the serving stack's pauses, not queueing",
        )
        if run
        else target(name, goal, NOT_MEASURED, reason=why)
    )
    run = wrk_run(source, 64)
    name, goal = "/detect errors at concurrency 64", "0"
    out.append(
        verdict(
            name,
            goal,
            run["errors"] == 0,
            f"{run['errors']} of {run['requests']:,} ({run['rps']:,.0f} req/s; {label})",
            f"errors: {run.get('error_kinds')}",
        )
        if run
        else target(name, goal, NOT_MEASURED, reason=why)
    )
    return out


def queueing_reason(run: dict) -> str:
    wait = 1000 * run["concurrency"] / max(run["rps"], 1e-9)
    return (
        f"{run['concurrency']} clients wait {wait:,.0f} ms per request on average (concurrency / throughput); "
        f"p99 <= {MAX_P99_MS_AT_16} ms needs about {1000 * run['concurrency'] / MAX_P99_MS_AT_16:,.0f} req/s or more"
        + (f"; {run['errors']} requests failed" if run["errors"] else "")
    )


def batch_share_target(results: dict) -> dict:
    name, goal = "/detect_batch texts/s vs the int8 model in process", f">= {MIN_BATCH_SHARE:.0%}"
    image = results.get("containers", {}).get("cpu_serving")
    in_process = results.get("speed", {}).get("detectors", {}).get(OURS, {}).get("all_cores")
    if not image or "runs" not in image or not in_process:
        return target(
            name,
            goal,
            NOT_MEASURED,
            reason=why_not_measured(results) if not image or "runs" not in image else "no in-process number",
        )
    best = max(runs_of(image, "/detect_batch"), key=lambda r: r["texts_per_s"])
    share = best["texts_per_s"] / in_process
    measured = (
        f"{share:.0%}: {best['texts_per_s']:,.0f} texts/s at {best['batch']} per call (CPU image) vs "
        f"{in_process:,.0f} in process, {results.get('machine', {}).get('cores')} cores"
    )
    return verdict(
        name,
        goal,
        share >= MIN_BATCH_SHARE,
        measured,
        f"{100 * (MIN_BATCH_SHARE - share):.0f} points short: HTTP, JSON and the load generator share the "
        f"cores with the model",
        stale_image(results),
    )


def rss_target(results: dict) -> dict:
    name, goal = "CPU image RSS under load (whole server)", f"<= {MAX_RSS_MB} MB"
    image = results.get("containers", {}).get("cpu_serving")
    if not image or "rss_peak_mb" not in image:
        return target(name, goal, NOT_MEASURED, reason=why_not_measured(results))
    peak = image["rss_peak_mb"]
    return verdict(
        name,
        goal,
        peak <= MAX_RSS_MB,
        f"{peak:,.0f} MB at peak ({image['rss_idle_mb']:,.0f} MB idle)",
        f"{peak - MAX_RSS_MB:,.0f} MB over: the arbiter and the worker each load Python, BentoML and its dependencies",
        stale_image(results),
    )


def recovery_target(results: dict) -> dict:
    name, goal = "serving again after kill -9 of the worker (CPU image, worst run)", f"<= {MAX_RECOVERY_S} s"
    faults = results.get("containers", {}).get("faults") or {}
    if "recovery_max_s" not in faults:
        return target(name, goal, NOT_MEASURED, reason=faults.get("error") or why_not_measured(results))
    runs = ", ".join(f"{r['recovery_s']:.2f}" for r in faults["recovery"])
    return verdict(
        name,
        goal,
        faults["recovery_max_s"] <= MAX_RECOVERY_S,
        f"{faults['recovery_max_s']:.2f} s (runs: {runs} s)",
        "a new worker imports Python, BentoML and the model before it answers",
    )


def drain_target(results: dict) -> dict:
    name, goal = "requests lost on docker stop at concurrency 16", "0"
    faults = results.get("containers", {}).get("faults") or {}
    if "lost_total" not in faults:
        return target(name, goal, NOT_MEASURED, reason=faults.get("error") or why_not_measured(results))
    drains = faults["drain"]
    return verdict(
        name,
        goal,
        faults["lost_total"] == 0,
        f"{faults['lost_total']} lost, {faults['answered_during_drains']:,} answered in {len(drains)} stops "
        f"(exit codes {sorted({d['exit_code'] for d in drains})})",
        "accepted connections were reset: see the drain runs under Faults",
    )


def fuzz_target(results: dict) -> dict:
    name, goal = "5xx under a schema-driven fuzzer (schemathesis, CPU image)", "0"
    fuzz = results.get("containers", {}).get("fuzz") or {}
    if "generated" not in fuzz:
        return target(name, goal, NOT_MEASURED, reason=fuzz.get("error") or why_not_measured(results))
    return verdict(
        name,
        goal,
        fuzz["server_errors"] == 0,
        f"{fuzz['server_errors']} in {fuzz['generated']:,} generated cases ({fuzz['unique_failures']} "
        f"unique failures of any check)",
        "see the fuzzer's report in the bench log",
    )


def cold_start_target(results: dict) -> dict:
    name, goal = "CPU image cold start to /readyz (median)", f"<= {MAX_COLD_START_S} s"
    cpu = results.get("containers", {}).get("images", {}).get("cpu", {})
    if "cold_start_median_s" not in cpu:
        return target(name, goal, NOT_MEASURED, reason=why_not_measured(results))
    runs = cpu["cold_start_s"]
    measured = f"{cpu['cold_start_median_s']:.1f} s (median of {len(runs)}: {', '.join(f'{s:.1f}' for s in runs)})"
    return verdict(
        name,
        goal,
        cpu["cold_start_median_s"] <= MAX_COLD_START_S,
        measured,
        f"{cpu['cold_start_median_s'] - MAX_COLD_START_S:.1f} s over: `bentoml serve` imports BentoML and the "
        f"service in its arbiter first, then starts the worker, which imports them again and loads the model",
        stale_image(results),
    )


def size_ratio_target(results: dict) -> dict:
    """Judged even for a stale image: the model is about 1% of either image."""
    name, goal = "CPU image size / GPU image size (uncompressed)", f"<= 1/{1 / MAX_CPU_TO_GPU:.0f}"
    images = results.get("containers", {}).get("images", {})
    cpu, gpu = images.get("cpu", {}), images.get("gpu", {})
    if not cpu.get("present") or not gpu.get("present"):
        return target(
            name, goal, NOT_MEASURED, reason=why_not_measured(results, "gpu" if cpu.get("present") else "cpu")
        )
    measured = f"1/{gpu['size'] / cpu['size']:.1f}: {cpu['size'] / 1e6:,.0f} MB vs {gpu['size'] / 1e6:,.0f} MB"
    if cpu.get("compressed") and gpu.get("compressed"):
        measured += f" (compressed 1/{gpu['compressed'] / cpu['compressed']:.1f})"
    layers = "; ".join(
        f"{layer['size'] / 1e6:,.0f} MB {layer['step']}"
        for layer in sorted(cpu.get("layers", []), key=lambda la: -la["size"])[:3]
    )
    return verdict(
        name,
        goal,
        cpu["size"] <= MAX_CPU_TO_GPU * gpu["size"],
        measured,
        f"the CPU image would have to be at most {MAX_CPU_TO_GPU * gpu['size'] / 1e6:,.0f} MB; "
        f"its largest layers: {layers}",
    )
