"""`langdetect`: one subcommand per pipeline stage."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from langdetect_ops import config
from langdetect_ops.errors import UserError


def cmd_corpus(args) -> None:
    from training.corpus import build_corpus

    manifest = build_corpus(args.out, args.cache, cap_per_language=args.cap, seed=args.seed, train_cap=args.train_cap)
    print(
        f"corpus written to {args.out}: "
        + ", ".join(f"{split} {sum(counts.values())}" for split, counts in manifest["counts"].items())
    )


def cmd_train(args) -> None:
    from training.pipeline import run_training

    # `kill` (or a CI timeout) ends the MLflow run as FAILED instead of leaving it RUNNING forever.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    overrides = dict(item.split("=", 1) for item in args.set)
    summary = run_training(
        args.data, args.profile, init_from=args.init_from, steps=args.steps, seed=args.seed, overrides=overrides
    )
    if summary is None:  # a rank other than 0 under torchrun: rank 0 reports
        return
    worst = ", ".join(f"{lang} {acc:.2%}" for lang, acc in summary.worst_languages)
    print(
        f"registered {config.REGISTERED_MODEL} version {summary.model_version} (run {summary.run_id})\n"
        f"test accuracy {summary.test_accuracy:.4%}, macro-F1 {summary.test_macro_f1:.4f}; worst: {worst}\n"
        f"{summary.parameters:,} parameters, trained in {summary.train_seconds:.0f} s "
        f"({summary.total_seconds:.0f} s in all); tracking: {config.tracking_uri()}"
    )


def cmd_promote(args) -> None:
    from registry.promote import NotPromoted, promote

    try:
        result = promote(args.version, alias=args.alias, force=args.force)
    except NotPromoted as exc:
        print(f"not promoted: {exc}", file=sys.stderr)
        sys.exit(3)
    if not result.changed:
        print(f"version {result.version} already has @{result.alias}; nothing to do")
    else:
        print(f"@{result.alias} -> version {result.version} (previously {result.previous or 'unset'})")


def cmd_export(args) -> None:
    from registry.export import run_export

    if args.out.name[:1] == "v" and args.out.name[1:].isdigit():  # `--out artifacts/export/v6` nests v6/v6
        print(
            f"note: --out is the export root: the files go to {args.out}/v<version>, inside what looks like "
            "a version folder already",
            file=sys.stderr,
        )
    s = run_export(
        alias=args.alias,
        version=args.version,
        data_dir=args.data,
        out_dir=args.out,
        activation_scales=args.activation_scales,
    )
    r = s.report
    print(
        f"exported {config.REGISTERED_MODEL} version {s.version}"
        f"{f' (@{s.alias})' if s.alias else ''}: fp32 ONNX {s.sizes['onnx_fp32_bytes'] / 1e6:.2f} MB, "
        f"int8 {s.sizes['onnx_int8_bytes'] / 1e6:.2f} MB\n"
        f"parity on {r.texts} test texts: agreement {r.agreement:.3%}, accuracy torch {r.accuracy_torch:.3%} "
        f"/ ONNX fp32 {r.accuracy_onnx_fp32:.3%} / int8 {r.accuracy_onnx_int8:.3%}\n"
        f"fp32 ONNX vs torch: max |logit difference| {s.fp32.max_abs_logit_diff:.2g} "
        f"(tolerance {s.fp32.max_logit_diff:g}), argmax agreement {s.fp32.argmax_agreement:.3%}"
    )
    for kind, tag in s.tags.items():
        print(f"BentoML model {tag} ({'imported' if s.created[kind] else 'already in the store'})")
    if s.pinned:
        print(f"serving pinned to version {s.version} (@{s.alias}): {s.pinned}")
    else:
        from service.pin import read_pin

        pin = read_pin()
        served = f"version {pin['mlflow_version']} (@{pin['mlflow_alias']})" if pin else "nothing pinned yet"
        print(f"serving pin unchanged, only an alias export moves it: {served}")


def cmd_mlflow_server(args) -> None:
    from langdetect_ops.tracking_server import serve_forever

    serve_forever(args.port, args.host)


def cmd_fetch_model(args) -> None:
    from langdetect_ops import fetch

    status = fetch.run(args)
    if status:
        sys.exit(status)


def cmd_deploy_local(args) -> None:
    from deploy import local

    if args.down:
        stopped = local.down()
        print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        return
    deployed = local.restart() if args.restart else local.up(args.mlflow_port, args.port, args.alias)
    print(
        f"langdetect serves {config.REGISTERED_MODEL} version {deployed.version} (@{deployed.alias}) on "
        f"{deployed.url} (ready {deployed.ready_s:.1f} s after the pod started)\n"
        f"MLflow: {deployed.mlflow_url} (users and passwords: artifacts/mlflow-server/credentials.json)\n"
        f"try:     curl -s {deployed.url}/detect -H 'content-type: application/json' -d '{{\"text\": \"Bonjour\"}}'\n"
        f"promote another version in the MLflow UI, then: langdetect deploy local --restart\n"
        f"stop:    langdetect deploy local --down"
    )


def cmd_images_base(args) -> None:
    from images.base import HOST_CA_CERTIFICATES, ensure_base_images

    extra_ca_dir = HOST_CA_CERTIFICATES if args.extra_ca_certs == "host" else args.extra_ca_certs
    made = ensure_base_images(extra_ca_dir=extra_ca_dir and Path(extra_ca_dir), force=args.force)
    print(
        f"{made.base} ({made.base_bytes / 1e6:.0f} MB), {made.uv} and {made.strip}: "
        + (f"built {', '.join(made.built)}" if made.built else "already present (--force rebuilds)")
    )


def cmd_images_build(args) -> None:
    from images.build import SPECS, build_images

    kinds = [kind for kind in SPECS if getattr(args, kind.replace("-", "_"))] or list(SPECS)
    for image in build_images(kinds, log_dir=args.log_dir):
        print(
            f"{image.image} (also :latest): {image.size_bytes / 1e6:,.0f} MB, bento {image.bento} in "
            f"{image.bento_seconds:.0f} s, containerized in {image.containerize_seconds:.0f} s"
        )


def cmd_images_report(args) -> None:
    from images.build import SPECS, image_repository
    from images.report import write_report

    for s in write_report(args.images or [f"{image_repository(kind)}:latest" for kind in SPECS], args.out):
        print(f"{s.image}: {s.size / 1e6:,.1f} MB uncompressed, {s.compressed / 1e6:,.1f} MB compressed")
    print(f"report: {args.out} and {args.out.with_suffix('.png')}")


def cmd_bench(args) -> None:
    from bench.run import BenchOptions, run_bench

    options = BenchOptions(
        quick=args.quick,
        out=args.out,
        assets=args.assets,
        data=args.data,
        alias=args.alias,
        version=args.version,
        skip_serving=args.skip_serving,
        skip_containers=args.skip_containers,
        build_images=args.build_images,
        argv=args.argv[1:],
        readme=args.readme,
        allow_dirty=args.allow_dirty,
    )
    results = run_bench(options)
    for t in results["targets"]:
        print(f"{t['status']:>12}  {t['name']}: {t['measured'] or t['reason']}")
    print(
        f"report: {args.out}, charts and results.json in {args.assets} ({results['meta']['seconds'] / 60:.1f} minutes)"
    )


def add_bench_parser(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="accuracy against peer detectors, speed, serving, images -> BENCHMARKS.md",
        description="Benchmarks the @champion model (or --version N) against the peer detectors "
        "of the bench extra (pip install -e '.[bench]') and writes BENCHMARKS.md, "
        "charts and results.json. Full run: 15 to 30 minutes on 2 cores; --quick: about 4.",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--alias", help=f"registry alias to benchmark (default @{config.CHAMPION_ALIAS})")
    which.add_argument("--version", help="registered version number to benchmark")
    p.add_argument(
        "--quick", action="store_true", help="subsample the test split, fewer requests, 3 cold starts: under 10 minutes"
    )
    p.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"), help="the report (default BENCHMARKS.md)")
    p.add_argument("--assets", type=Path, default=Path("docs/bench"), help="where the charts and results.json go")
    p.add_argument("--data", type=Path, default=config.CORPUS_DIR, help="dataset whose test split is scored")
    p.add_argument("--skip-serving", action="store_true", help="no `bentoml serve` load test")
    p.add_argument("--skip-containers", action="store_true", help="no Docker: no image sizes, cold starts, load")
    p.add_argument("--build-images", action="store_true", help="run `langdetect images build` first")
    p.add_argument(
        "--readme",
        type=Path,
        default=Path("README.md"),
        help="README whose generated figures are rewritten from the results (default README.md)",
    )
    p.add_argument(
        "--allow-dirty",
        action="store_true",
        help="bench a working tree that differs from its commit (refused otherwise); the outputs say so",
    )
    p.set_defaults(func=cmd_bench)


def add_fleet_parsers(sub) -> None:
    """The model outside the image: the tracking server, the fetcher, the local play of the manifests."""
    from langdetect_ops import fetch

    p = sub.add_parser(
        "mlflow-server",
        help="MLflow tracking server over this store: basic auth, artifact proxy",
        description="Runs `mlflow server` over the project's sqlite store and artifacts, with "
        "MLflow's basic-auth app, --serve-artifacts and one worker, until Ctrl-C.",
    )
    p.add_argument("--port", type=int, default=5001, help="default 5001 (the local image registry takes 5000)")
    p.add_argument("--host", default="127.0.0.1")
    p.set_defaults(func=cmd_mlflow_server)

    p = sub.add_parser(
        "fetch-model",
        help="download and verify a version's serving bundle from an MLflow server",
        description=fetch.__doc__.split("\n\n")[0],
    )
    fetch.add_arguments(p)
    p.set_defaults(func=cmd_fetch_model)

    deploy = sub.add_parser("deploy", help="run the Kubernetes manifests (deploy/k8s)")
    steps = deploy.add_subparsers(dest="deploy_command", required=True)
    p = steps.add_parser("local", help="MLflow server + fetch + the CPU overlay played with podman, on loopback")
    p.add_argument("--port", type=int, default=3000, help="where the pod serves, on 127.0.0.1")
    p.add_argument("--mlflow-port", type=int, default=5001)
    p.add_argument("--alias", default=config.CHAMPION_ALIAS)
    action = p.add_mutually_exclusive_group()
    action.add_argument(
        "--restart",
        action="store_true",
        help="play the pod again (kubectl rollout restart): it fetches the alias's version now",
    )
    action.add_argument("--down", action="store_true", help="stop the pod and the MLflow server")
    p.set_defaults(func=cmd_deploy_local)


def add_images_parser(sub) -> None:
    """Imports nothing from images/: the other subcommands must work even where Docker is absent."""
    images = sub.add_parser("images", help="container images: registry-free base, slim CPU and GPU images")
    steps = images.add_subparsers(dest="images_command", required=True)
    p = steps.add_parser(
        "base",
        help="build the Python 3.11 base image (Debian) and the build-only tool images: uv (PyPI) and "
        "strip (the host's binutils)",
    )
    p.add_argument(
        "--extra-ca-certs",
        nargs="?",
        const="host",
        metavar="DIR",
        help="trust the *.crt files in DIR inside builds (no DIR: the host's "
        "/usr/local/share/ca-certificates); needed behind a TLS-intercepting proxy",
    )
    p.add_argument("--force", action="store_true", help="rebuild even if the images exist")
    p.set_defaults(func=cmd_images_base)
    p = steps.add_parser(
        "build",
        help="bentoml build + containerize the CPU and GPU images, with the model baked in "
        "and model-less (all four by default)",
    )
    p.add_argument("--cpu", action="store_true", help="the slim CPU image (bentofile.yaml)")
    p.add_argument("--gpu", action="store_true", help="the GPU image (bentofile.gpu.yaml)")
    p.add_argument(
        "--cpu-modelless",
        action="store_true",
        help="the CPU image without the model: it serves what `langdetect fetch-model` put in "
        "LANGDETECT_MODEL_DIR (the fleet's image)",
    )
    p.add_argument("--gpu-modelless", action="store_true", help="the GPU image without the models")
    p.add_argument("--log-dir", type=Path, help="write build output here instead of the terminal")
    p.set_defaults(func=cmd_images_build)
    p = steps.add_parser("report", help="image sizes (uncompressed, compressed, layers, packages) + bar chart")
    p.add_argument("--images", nargs="+", help="default: langdetect-cpu:latest langdetect-gpu:latest")
    p.add_argument("--out", type=Path, default=Path("reports/images.md"))
    p.set_defaults(func=cmd_images_report)


def cmd_rescore(args) -> None:
    from training.rescore import rescore

    print(f"version {args.version}: valid_selection_score {rescore(args.version, args.data):.4%}")


def cmd_ood_set(args) -> None:
    from training.ood import build_ood_sets, summary_lines

    print("\n".join(summary_lines(build_ood_sets(args.out, args.corpus, args.cache), args.out)))


def field_assignment(item: str) -> str:
    if "=" not in item:
        raise argparse.ArgumentTypeError(f"{item!r}: expected FIELD=VALUE")
    return item


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="langdetect", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("corpus", help="build the multilingual corpus from Debian packages (offline)")
    p.add_argument("--out", type=Path, default=config.CORPUS_DIR)
    p.add_argument("--cache", type=Path, default=config.DOWNLOAD_CACHE, help="where .deb downloads are kept")
    p.add_argument(
        "--cap",
        type=int,
        default=config.CORPUS_CAP,
        help="texts per language that set the held-out sizes (valid and test take 10%% each)",
    )
    p.add_argument("--train-cap", type=int, default=config.CORPUS_TRAIN_CAP, help="maximum training texts per language")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_corpus)

    p = sub.add_parser("rescore", help="log the validation-slice score of a version registered before it existed")
    p.add_argument("--version", required=True)
    p.add_argument("--data", type=Path, help="the corpus it was validated on (default: its run's data_dir)")
    p.set_defaults(func=cmd_rescore)

    p = sub.add_parser("ood-set", help="build the out-of-domain evaluation sets (data/ood) held out of training")
    p.add_argument("--out", type=Path, default=config.OOD_DIR)
    p.add_argument("--corpus", type=Path, default=config.CORPUS_DIR, help="the corpus whose texts are excluded")
    p.add_argument("--cache", type=Path, default=config.DOWNLOAD_CACHE, help="where downloads are kept")
    p.set_defaults(func=cmd_ood_set)

    p = sub.add_parser("train", help="train tokenizer + classifier, log to MLflow, register a version")
    p.add_argument("--profile", choices=sorted(config.PROFILES), default="default")
    p.add_argument(
        "--data",
        type=Path,
        default=config.CORPUS_DIR,
        help="dataset in papluca's format: DIR/{train,valid,test}.{csv,parquet}",
    )
    p.add_argument("--init-from", help="fine-tune this checkpoint (local dir, or hub id when reachable)")
    p.add_argument("--steps", type=int, help="override the profile's number of optimiser steps")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        type=field_assignment,
        help="override one field of the profile (repeatable), e.g. --set vocab_size=12000",
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "promote",
        help="point an alias (default @champion) at a registered version",
        description="Moves the alias unless the version is not better on the validation split "
        "(exit 3: the alias stays; --force overrides). The test split never decides.",
    )
    p.add_argument("version", help="registered model version number, or 'latest'")
    p.add_argument("--alias", default=config.CHAMPION_ALIAS)
    p.add_argument("--force", action="store_true", help="promote even if it is not better on the validation split")
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser("export", help="ONNX export + int8 quantization + parity gate + BentoML import")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--alias", help=f"registry alias to export (default @{config.CHAMPION_ALIAS})")
    which.add_argument("--version", help="registered version number to export")
    p.add_argument(
        "--data",
        type=Path,
        help="dataset whose test split feeds the parity gate (default: the one the version was trained on)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=config.ARTIFACTS_DIR / "export",
        help="the export root: the files go to OUT/v<version> (default artifacts/export)",
    )
    p.add_argument(
        "--activation-scales",
        choices=config.INT8_ACTIVATION_SCALES,
        default=config.DEFAULT_INT8_ACTIVATION_SCALES,
        help="int8 activation scales: one per token (default: each text's answer independent of the texts "
        "batched beside it) or onnxruntime's one per batch tensor (a few %% faster, batch-dependent)",
    )
    p.set_defaults(func=cmd_export)

    add_fleet_parsers(sub)
    add_images_parser(sub)
    add_bench_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)  # the command line, for reports
    try:
        args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
