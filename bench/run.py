"""`langdetect bench`: every measurement in turn, then BENCHMARKS.md, the charts and results.json.

Each part is bounded (texts, requests, seconds) and fails on its own: a part that cannot run (no
peer installed, no Docker, an image not built) is reported with the reason instead of stopping
the others. A missing champion or export stops everything (exit 2).
"""

from __future__ import annotations

import datetime
import json
import os
import shlex
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench import attempt
from bench.serving import LoadPlan
from langdetect_ops import config
from langdetect_ops.errors import UserError
from langdetect_ops.provenance import REPO_ROOT
from langdetect_ops.slices import SLICE_KEYS


@dataclass(frozen=True)
class Budget:
    """How much each part measures: --quick trades precision for a run of a few minutes."""

    per_language: int | None  # test texts per language for accuracy; None: the whole split
    speed_texts: int
    speed_repeats: int
    plan: LoadPlan
    cold_starts: int
    fault_runs: int  # kill -9 recoveries and docker-stop drains, each on a fresh container
    fuzz_examples: int  # schemathesis --max-examples (per operation and phase)


FULL = Budget(
    None, 4000, 2, LoadPlan(detect_requests=2000, batch_texts=8000, max_seconds=60, wrk_seconds=15), 5, 3, 200
)
QUICK = Budget(60, 1000, 1, LoadPlan(detect_requests=300, batch_texts=1500, max_seconds=15, wrk_seconds=5), 3, 1, 50)


@dataclass
class BenchOptions:
    quick: bool = False
    out: Path = Path("BENCHMARKS.md")
    assets: Path = Path("docs/bench")
    data: Path = config.CORPUS_DIR
    alias: str | None = None
    version: str | None = None
    skip_serving: bool = False
    skip_containers: bool = False
    build_images: bool = False
    logs: Path = Path("reports/bench")
    readme: Path | None = None  # its generated blocks are rewritten from the results
    ood_dir: Path = config.OOD_DIR
    allow_dirty: bool = False  # bench uncommitted code anyway, and say so in every output
    argv: list[str] = field(default_factory=list)


def run_bench(options: BenchOptions) -> dict:
    from bench.model import require_in_store, resolve_model
    from bench.peers import INSTALL_HINT, load_peers

    config.quiet_telemetry()
    started = time.monotonic()
    tree = require_clean_tree(options.allow_dirty)
    budget = QUICK if options.quick else FULL
    model = resolve_model(options.alias, options.version)
    if not options.skip_serving:
        require_in_store(model)
    peers, unavailable = load_peers()
    for missing in unavailable:
        print(f"peer {missing.name} unavailable: {missing.reason}", file=sys.stderr)
    if unavailable:
        print(f"the bench reports them as unavailable; install the pinned peers with `{INSTALL_HINT}`", file=sys.stderr)
    results = {"meta": meta(options, tree), **setup(model, [p.package for p in peers + unavailable])}
    texts, labels = test_texts(options.data, budget, results)
    speed_texts = sample(texts, labels, budget.speed_texts)
    detectors = [*our_detectors(model), *peers]
    sections = {
        "accuracy": lambda: accuracy(detectors, unavailable, texts, labels, ood_sets(options.ood_dir, budget)),
        "speed": lambda: speed(detectors, speed_texts, budget),
        "serving": lambda: serving(model, speed_texts, budget, options),
        "containers": lambda: containers(speed_texts, budget, options),
    }
    for name, measure in sections.items():
        print(f"{name} ...", flush=True)
        section_started = time.monotonic()
        results[name] = attempt(measure)
        results["meta"]["section_seconds"][name] = time.monotonic() - section_started
    results["meta"]["seconds"] = time.monotonic() - started
    write_outputs(results, options)
    return results


@dataclass(frozen=True)
class Tree:
    commit: str  # HEAD, or "unknown" outside a git checkout
    dirty_paths: tuple[str, ...]  # modified tracked files and untracked files that .gitignore does not ignore


def git_tree(repo: Path = REPO_ROOT) -> Tree:
    """HEAD and what differs from it; a tree git cannot read counts as clean (an installed package)."""
    try:
        head = git(repo, "rev-parse", "HEAD").strip()
        status = git(repo, "status", "--porcelain", "-z", "--untracked-files=normal")
    except (OSError, subprocess.SubprocessError):
        return Tree("unknown", ())
    return Tree(head, porcelain_paths(status))


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30, check=True
    ).stdout


def porcelain_paths(status: str) -> tuple[str, ...]:
    """Paths of `git status --porcelain -z`: "XY path" entries; a rename or copy is followed by its source."""
    paths, fields = [], iter(status.split("\0"))
    for entry in fields:
        if len(entry) > 3:
            paths.append(entry[3:])
            if entry[0] in "RC":
                next(fields, None)
    return tuple(paths)


def require_clean_tree(allow_dirty: bool, repo: Path = REPO_ROOT) -> Tree:
    """Numbers from uncommitted code cannot be reproduced from the commit they name: refuse, unless allowed."""
    tree = git_tree(repo)
    if tree.dirty_paths and not allow_dirty:
        shown = ", ".join(tree.dirty_paths[:10]) + (", ..." if len(tree.dirty_paths) > 10 else "")
        raise UserError(
            f"the working tree differs from commit {tree.commit[:12]} ({len(tree.dirty_paths)} paths: {shown}): "
            "commit the changes, or pass --allow-dirty to bench them anyway (every output then says so)"
        )
    return tree


def meta(options: BenchOptions, tree: Tree) -> dict:
    return {
        "command": shlex.join(["langdetect", "bench", *options.argv]),
        "quick": options.quick,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "git_commit": tree.commit,
        "dirty": bool(tree.dirty_paths),
        "dirty_paths": list(tree.dirty_paths),
        "section_seconds": {},
        "seconds": 0.0,
    }


def setup(model, peer_packages: list[str]) -> dict:
    from bench.environment import STACK, machine, versions

    bundle = sum(p.stat().st_size for p in (model.export_dir / "onnx").iterdir() if p.is_file())
    return {
        "machine": machine(),
        "versions": versions([*STACK, *peer_packages]),
        "model": {**model.as_dict(), "onnx_bundle_bytes": bundle},
        "training": attempt(training_run, model.run_id),
        "experiments": attempt(experiment_history),
    }


def experiment_history() -> dict:
    """Every finished training run of the default profile in the MLflow experiment, oldest first: what
    each changed from today's default profile, its validation score (what promotion selects on), and what
    it reported on test and out of domain (never used to choose). The evidence behind the recipe."""
    from dataclasses import asdict

    import mlflow

    from registry.models import list_versions, registry_client

    default = asdict(config.PROFILES["default"])
    runs = mlflow.search_runs(
        experiment_names=[config.EXPERIMENT],
        filter_string="params.profile = 'default' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time ASC"],
        output_format="list",
    )
    versions = {v.run_id: v.version for v in list_versions(registry_client())}
    return {
        "default_profile": default,
        "runs": [experiment_row(run, default, versions.get(run.info.run_id)) for run in runs],
    }


def experiment_row(run, default: dict, version: str | None) -> dict:
    params, metrics = run.data.params, run.data.metrics
    changed = {key: params[key] for key, value in default.items() if key in params and number(params[key]) != value}
    missing = [key for key in default if key not in params]  # fields added to the profile after this run
    return {
        "run_id": run.info.run_id,
        "version": version,
        "started": run.info.start_time,
        "changed_from_default": changed,
        "fields_not_logged": missing,
        **{k: metrics[k] for k in ("valid_selection_score", "valid_accuracy", "test_accuracy") if k in metrics},
        **{k: metrics[k] for k in ("command_seconds", "train_seconds") if k in metrics},
        "ood": {key: metrics.get(f"ood_{key}_accuracy") for key in SLICE_KEYS},
        # runs with an n-gram model also log the transformer alone: what the ensemble adds
        **(
            {
                "transformer_alone": {
                    "valid_selection_score": metrics["transformer_valid_selection_score"],
                    "ood": {key: metrics.get(f"transformer_ood_{key}_accuracy") for key in SLICE_KEYS},
                }
            }
            if "transformer_valid_selection_score" in metrics
            else {}
        ),
    }


TRAINING_PARAMS = ("profile", "parameters", "layers", "hidden_size", "vocab_size", "max_length", "steps", "device")


def training_run(run_id: str) -> dict:
    """The benchmarked version's MLflow training run: its size, duration and own test scores (the README's
    training figures). The run starts after the tokenizer is trained."""
    from registry.models import registry_client

    run = registry_client().get_run(run_id)
    params, metrics = run.data.params, run.data.metrics
    return {
        "run_id": run_id,
        **{k: number(params[k]) for k in TRAINING_PARAMS if k in params},
        **{
            k: metrics[k]
            for k in ("train_seconds", "command_seconds", "test_accuracy", "test_macro_f1")
            if k in metrics
        },
        "run_seconds": (run.info.end_time - run.info.start_time) / 1000 if run.info.end_time else None,
    }


def number(value: str) -> int | float | str:
    """An MLflow parameter (always a string) as the number it was logged from, where it is one."""
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def our_detectors(model):
    from bench.detectors import our_detectors as ours

    return ours(model.export_dir, f"v{model.version}")


def test_texts(data_dir: Path, budget: Budget, results: dict) -> tuple[list[str], list[str]]:
    from langdetect_ops.slices import stratified_sample
    from training.dataset import load_dataset

    test = load_dataset(data_dir)["test"]
    texts, labels = test.texts, [config.LANGUAGES[i] for i in test.labels]
    if budget.per_language:
        texts, labels = stratified_sample(texts, labels, budget.per_language)
    results["data"] = {"path": str(test.path), "sha256": test.sha256, "texts": len(texts), "split_texts": len(test)}
    return texts, labels


def sample(texts: list[str], labels: list[str], count: int) -> list[str]:
    """About `count` test texts, every language alike: the speed and load-test inputs."""
    from langdetect_ops.slices import stratified_sample

    return stratified_sample(texts, labels, max(1, count // len(config.LANGUAGES)), seed=1)[0]


def ood_sets(folder: Path, budget: Budget) -> list:
    from bench.ood_sets import load_ood_sets

    return load_ood_sets(folder, budget.per_language)


TEST = "test"  # the test split's group among the sets each detector scores


def accuracy(detectors, unavailable, texts: list[str], labels: list[str], ood: list) -> dict:
    """The test split and its slices, then each out-of-domain set and its slices; each detector loaded once."""
    from bench.accuracy import evaluate
    from langdetect_ops.slices import evaluation_sets

    sets = evaluation_sets(texts, labels)
    groups = {TEST: sets, **{o.key: o.slices for o in ood if o.slices}}
    scored, failed = {}, [asdict(u) for u in unavailable]
    ood_scores: dict[str, dict] = {o.key: {} for o in ood}
    for detector in detectors:
        print(f"  {detector.name}", flush=True)
        scores = attempt(evaluate, detector, groups, os.cpu_count() or 1)
        if "error" in scores:  # a detector that breaks on this data is reported like one that is not installed
            failed.append({"name": detector.name, "package": detector.package, "reason": scores["error"]})
            continue
        scored[detector.name] = {
            "kind": detector.kind,
            "package": detector.package,
            "version": detector.version,
            "note": detector.note,
            "scores": scores.pop(TEST),
        }
        for key, by_slice in scores.items():
            ood_scores[key][detector.name] = {"kind": detector.kind, "scores": by_slice}
    return {
        "sets": set_summaries(sets),
        "texts_per_language": dict(sorted(Counter(labels).items())),
        "detectors": scored,
        "unavailable": failed,
        "ood": {o.key: ood_record(o, ood_scores[o.key]) for o in ood},
    }


def ood_record(ood_set, detectors: dict) -> dict:
    """What the set is (or why it was not scored), then its slices and each detector's scores on them."""
    if not ood_set.slices:
        return ood_set.record
    return {**ood_set.record, "sets": set_summaries(ood_set.slices), "detectors": detectors}


def set_summaries(sets: list) -> list[dict]:
    return [{"name": s.name, "texts": len(s), "languages": len(set(s.labels))} for s in sets]


def speed(detectors, texts: list[str], budget: Budget) -> dict:
    from bench.speed import measure

    measured = {}
    for detector in (d for d in detectors if d.kind != "ablation"):  # the parts are scored, not timed
        measured[detector.name] = attempt(measure, detector, texts, repeats=budget.speed_repeats)
        print(f"  {detector.name}: {measured[detector.name]}", flush=True)
    return {"texts": len(texts), "repeats": budget.speed_repeats, "detectors": measured}


def serving(model, texts: list[str], budget: Budget, options: BenchOptions) -> dict:
    from bench.serving import measure_bentoml, measure_designs

    plan = asdict(budget.plan)
    if options.skip_serving:
        return {"plan": plan, "bentoml": {"reason": "skipped (--skip-serving)"}}
    options.logs.mkdir(parents=True, exist_ok=True)
    return {
        "plan": plan,
        "designs": attempt(lambda: {"variants": measure_designs(model.store_tags, texts, budget.plan, options.logs)}),
        "bentoml": attempt(measure_bentoml, model.store_tags, texts, budget.plan, options.logs),
    }


def containers(texts: list[str], budget: Budget, options: BenchOptions) -> dict:
    from bench.containers import measure_images

    if options.skip_containers:
        return {"available": False, "reason": "skipped (--skip-containers)"}
    previous = previous_results(options.assets / "results.json").get("containers", {})
    return measure_images(
        texts,
        budget.plan,
        budget.cold_starts,
        previous,
        options.quick,
        build_dir=options.logs if options.build_images else None,
        fault_runs=budget.fault_runs,
        fuzz_examples=budget.fuzz_examples,
        log_dir=options.logs,
    )


def previous_results(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def write_outputs(results: dict, options: BenchOptions) -> None:
    from bench.plots import draw_all
    from bench.report import render
    from bench.targets import evaluate

    results["targets"] = evaluate(results)
    options.assets.mkdir(parents=True, exist_ok=True)
    chart_dir = os.path.relpath(options.assets.resolve(), options.out.resolve().parent)
    results["meta"]["results_file"] = f"{chart_dir}/results.json"
    (options.assets / "results.json").write_text(json.dumps(results, indent=1, default=str))
    charts = draw_all(results, options.assets)
    options.out.write_text(render(results, charts, chart_dir))
    if options.readme:
        from bench.readme import update_readme

        update_readme(options.readme, results)
