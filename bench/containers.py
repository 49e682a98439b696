"""The images: sizes (as in `langdetect images report`), cold start to /readyz, and the CPU image under load,
under faults (a killed worker, `docker stop` under load) and under a schema-driven fuzzer.

Containers run with `--network host` (the only network here) on a free port passed as BENTOML_PORT,
and are always removed. An image that is not there is reported as such, not built (unless
--build-images).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from bench import attempt
from bench.serving import LoadPlan, load_suite, niceness
from langdetect_ops.containers import Container, docker, engine_problem_after_setup, image_exists, inspect_image
from langdetect_ops.faults import drain_under_load, recovery_after_kill, worker_pids
from langdetect_ops.fuzz import run_schemathesis
from langdetect_ops.processes import process_tree_rss

KINDS = ("cpu", "gpu", "cpu-modelless", "gpu-modelless")
STARTED = ("cpu", "gpu")  # cold starts: a model-less image starts only beside a fetched bundle (bench/fleet.py)
NOT_BUILT = "image not built: run `langdetect images build` (or `langdetect bench --build-images`)"


def image_facts(image: str, previous: dict | None, measure_compressed: bool) -> dict:
    """Sizes and lineage labels of one image; the compressed size is reused when the image id is unchanged."""
    from images.report import compressed_size, layers

    if not image_exists(image):
        return {"image": image, "present": False, "reason": NOT_BUILT}
    info = inspect_image(image)
    facts = {
        "image": image,
        "present": True,
        "id": info["Id"],
        "size": int(info["Size"]),
        "labels": info["Config"].get("Labels") or {},
        "layers": [
            {"size": layer.size, "step": layer_step(layer.created_by)} for layer in layers(image) if layer.size > 0
        ],
    }
    if previous and previous.get("id") == info["Id"] and previous.get("compressed"):
        facts["compressed"], facts["compressed_note"] = previous["compressed"], "reused: same image id"
    elif measure_compressed:
        facts["compressed"] = compressed_size(image)
    else:
        facts["compressed_note"] = "not measured in --quick (`docker save` and gzip take minutes)"
    return facts


def layer_step(created_by: str) -> str:
    """What a layer of images/bento.Dockerfile.j2 holds, named for the size report."""
    if not created_by.strip():
        return "base (langdetect images base)"
    for marker, step in (
        ("/app/.venv", "runtime venv (bytecode for what serving imports)"),
        ("stdlib-bytecode", "standard library bytecode"),
        ("COPY . ./", "bento: code and model"),
        ("compileall", "bento code bytecode"),
        ("BENTO_USER", "BentoML's user and folders"),
    ):
        if marker in created_by:
            return step
    return created_by.strip()[:60]


def cold_starts(image: str, runs: int) -> dict:
    seconds = []
    for _ in range(runs):
        with Container(image) as container:
            seconds.append(container.wait_ready())
    print(f"  {image}: cold starts {', '.join(f'{s:.1f}' for s in seconds)} s", flush=True)
    return {"cold_start_s": seconds, "cold_start_median_s": statistics.median(seconds)}


def measure_container_load(image: str, texts: list[str], plan: LoadPlan) -> dict:
    with Container(image) as container:
        container.wait_ready()
        pid = container.pid()  # once: a `docker inspect` per memory sample would load the cores under test
        return {
            "image": image,
            "niceness": niceness(pid),
            **load_suite(container.url, texts, plan, lambda: process_tree_rss(pid)),
        }


def measure_faults(image: str, runs: int) -> dict:
    """`kill -9` of the serving worker (seconds until /detect answers again), then `docker stop` under 16
    clients that open a connection per request (requests lost); each `runs` times on a fresh container."""
    recoveries, drains = [], []
    for _ in range(runs):
        with Container(image) as container:
            container.wait_ready()
            recoveries.append(recovery_after_kill(container.url, lambda: worker_pids(container.pid())[0]))
            container.wait_ready()
            drains.append(
                drain_under_load(
                    container.url, lambda: docker("stop", "-t", "30", container.id), container.exit_code, concurrency=16
                ).as_dict()
            )
    seconds = ", ".join(f"{r['recovery_s']:.2f}" for r in recoveries)
    print(
        f"  {image}: recovery after kill -9 {seconds} s; lost on docker stop {[d['lost'] for d in drains]}", flush=True
    )
    return {
        "recovery": recoveries,
        "recovery_max_s": max(r["recovery_s"] for r in recoveries),
        "drain": drains,
        "lost_total": sum(d["lost"] for d in drains),
        "answered_during_drains": sum(d["answered"] for d in drains),
    }


def measure_fuzz(image: str, max_examples: int) -> dict:
    """schemathesis on the CPU image; 5xx are the failures of its `not_a_server_error` check."""
    import json
    import tempfile

    with Container(image) as container, tempfile.TemporaryDirectory() as tmp:
        container.wait_ready()
        started = time.monotonic()
        found, _ = run_schemathesis(container.url, max_examples, Path(tmp) / "fuzz.json")
        seconds = time.monotonic() - started
    failures = found.get("failures", [])
    return {
        "tool": f"schemathesis {found.get('schemathesis_version')}",
        "max_examples": max_examples,
        "generated": found["test_cases"]["generated"],
        "unique_failures": found["test_cases"]["unique_failures"],
        "server_errors": sum("not_a_server_error" in json.dumps(f) for f in failures),
        "phases": {name: p["status"] for name, p in found.get("phases", {}).items()},
        "exit_code": found["exit_code"],
        "seconds": seconds,
    }


def measure_images(
    texts: list[str],
    plan: LoadPlan,
    cold_runs: int,
    previous: dict,
    quick: bool,
    build_dir: Path | None = None,
    fault_runs: int = 3,
    fuzz_examples: int = 200,
    log_dir: Path = Path("reports/bench"),
) -> dict:
    """Sizes of every image and cold starts of the baked ones (built first when `build_dir` is given: the
    build logs go there), the CPU image under the load plan, and the fleet path (bench/fleet.py)."""
    problem = engine_problem_after_setup()
    if problem:
        return {"available": False, "reason": problem}
    if build_dir is not None:
        build_images(build_dir)
    from images.build import image_repository

    images = {kind: f"{image_repository(kind)}:latest" for kind in KINDS}
    results: dict = {"available": True, "images": {}}
    for kind, image in images.items():
        facts = image_facts(image, previous.get("images", {}).get(kind), measure_compressed=not quick)
        if facts["present"] and kind in STARTED:
            facts.update(attempt(cold_starts, image, cold_runs))
        results["images"][kind] = facts
    if results["images"]["cpu"]["present"]:
        results["cpu_serving"] = attempt(measure_container_load, images["cpu"], texts, plan)
        results["faults"] = attempt(measure_faults, images["cpu"], fault_runs)
        results["fuzz"] = attempt(measure_fuzz, images["cpu"], fuzz_examples)
    from bench.fleet import measure_fleet

    log_dir.mkdir(parents=True, exist_ok=True)
    results["fleet"] = attempt(measure_fleet, results["images"], log_dir.resolve(), quick)
    return results


def build_images(log_dir: Path) -> None:
    from images.build import build_images as build

    for image in build(list(KINDS), log_dir=log_dir):
        print(f"  built {image.image}: {image.size_bytes / 1e6:,.0f} MB", flush=True)
