"""`langdetect fetch-model`: the serving bundle of a registered version, from an MLflow tracking server.

What a pod's init container runs (KServe's storage-initializer pattern): resolve
`models:/langdetect@champion` (or a version) through MLflow's REST API, download the bundle that
`langdetect export` logged for that version through the server's artifact proxy, check every file
against the sha256 recorded in the version's tags, and only then move it into place. Standard library
only: it runs in the slim CPU image, which has no mlflow (about 850 MB with its dependencies).

Layout written to OUT (the directory LANGDETECT_MODEL_DIR names):
    OUT/onnx/{model.int8.onnx,tokenizer.json,labels.json,ngrams.npz}   the CPU runtime
    OUT/torch/...                                           with --runtime all (the GPU image)
    OUT/bundle.json                                         version, alias, run, sha256 of each file

Faults end with a message and a non-zero exit, and leave OUT as it was: an unknown alias or version (2),
wrong or missing credentials (3, never retried), a server that stays unreachable after bounded retries
with backoff (4), a sha256 mismatch or a cut-off download (5).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = "bundle.json"
# Tags that `langdetect export` sets on a model version (registry/export.py).
BUNDLE_PATH_TAG = "serving_bundle_path"  # the bundle's path under the server's artifact root
BUNDLE_SHA256_TAG = "serving_bundle_sha256"  # JSON {"onnx/model.int8.onnx": sha256, ...}
RUNTIMES = {"onnx": ("onnx/",), "all": ("onnx/", "torch/")}
DEFAULT_MODEL = "langdetect"
ARTIFACT_PROXY = "/api/2.0/mlflow-artifacts/artifacts"


class FetchError(RuntimeError):
    exit_code = 1


class NotFoundError(FetchError):
    exit_code = 2


class AuthError(FetchError):
    exit_code = 3


class UnreachableError(FetchError):
    exit_code = 4


class IntegrityError(FetchError):
    exit_code = 5


@dataclass
class Server:
    """An MLflow tracking server reached over plain HTTP, with MLflow's own client variables for auth."""

    uri: str
    username: str | None = None
    password: str | None = None
    token: str | None = None
    attempts: int = 5
    backoff_s: float = 0.5
    timeout_s: float = 30.0
    slept: list[float] = field(default_factory=list)  # the backoff waits taken, for the report

    @classmethod
    def from_env(cls, uri: str | None = None, **options) -> Server:
        uri = uri or os.environ.get("MLFLOW_TRACKING_URI", "")
        if not uri.startswith(("http://", "https://")):
            raise FetchError(
                f"the tracking URI must be an MLflow server (http:// or https://), got {uri!r}: "
                "pass --tracking-uri or set MLFLOW_TRACKING_URI"
            )
        if urllib.parse.urlsplit(uri).username is not None:
            raise FetchError(
                "the tracking URI holds credentials; set MLFLOW_TRACKING_USERNAME and "
                "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) instead"
            )
        return cls(
            uri.rstrip("/"),
            os.environ.get("MLFLOW_TRACKING_USERNAME") or None,
            os.environ.get("MLFLOW_TRACKING_PASSWORD") or None,
            os.environ.get("MLFLOW_TRACKING_TOKEN") or None,
            **options,
        )

    def headers(self) -> dict[str, str]:
        if self.token:
            return {"Authorization": f"Bearer {self.token}"}
        if self.username or self.password:
            pair = f"{self.username or ''}:{self.password or ''}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        return {}

    def open(self, path: str, query: dict[str, str] | None = None):
        """GET with bounded retries for what can heal (refused connections, timeouts, 5xx, 429); none
        for what cannot (401/403: credentials, 404: unknown model), which fail at once. Redirects are not
        followed: urllib would send the credentials to wherever they point."""
        url = self.uri + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        request = urllib.request.Request(url, headers=self.headers())
        for attempt in range(1, self.attempts + 1):
            try:
                return NO_REDIRECTS.open(request, timeout=self.timeout_s)
            except urllib.error.HTTPError as exc:
                detail = _error_detail(exc)
                if exc.code == 401:
                    raise AuthError(
                        f"{self.uri} refused the credentials (401): set MLFLOW_TRACKING_USERNAME "
                        f"and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) to a user of the "
                        f"server{' (none are set)' if not self.headers() else ''}"
                    ) from None
                if exc.code == 403:
                    raise AuthError(f"{self.uri}: this user may not read {path} (403): {detail}") from None
                if exc.code == 404 or "RESOURCE_DOES_NOT_EXIST" in detail or "INVALID_PARAMETER" in detail:
                    raise NotFoundError(detail or f"{url}: not found") from None
                if 300 <= exc.code < 400:
                    raise FetchError(
                        f"{url}: HTTP {exc.code} redirect to {exc.headers.get('Location')!r}; "
                        "point MLFLOW_TRACKING_URI at the server itself"
                    ) from None
                if exc.code < 500 and exc.code != 429:
                    raise FetchError(f"{url}: HTTP {exc.code}: {detail}") from None
                problem = f"HTTP {exc.code}"
            except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as exc:
                problem = str(getattr(exc, "reason", exc))
            if attempt == self.attempts:
                raise UnreachableError(
                    f"{self.uri} did not answer after {self.attempts} attempts "
                    f"({sum(self.slept):.1f} s of backoff): {problem}"
                )
            wait = self.backoff_s * 2 ** (attempt - 1)
            self.slept.append(wait)
            time.sleep(wait)
        raise AssertionError("unreachable")

    def json(self, path: str, query: dict[str, str]) -> dict:
        with self.open(path, query) as response:
            body = response.read()
        try:
            return json.loads(body)
        except ValueError:
            raise FetchError(f"{self.uri}{path} did not answer JSON: is this an MLflow tracking server?") from None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # urllib then raises HTTPError with the 3xx code


NO_REDIRECTS = urllib.request.build_opener(_NoRedirect)


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
    except (ValueError, OSError):
        return ""
    return f"{body.get('error_code', '')}: {body.get('message', '')}".strip(": ")


@dataclass
class Fetched:
    out: Path
    version: str
    alias: str | None
    files: dict[str, str]
    bytes: int
    seconds: float


def resolve_version(server: Server, name: str, alias: str | None, version: str | None) -> dict:
    """The registry's model version record (tags included), by alias or by number."""
    try:
        if alias:
            record = server.json("/api/2.0/mlflow/registered-models/alias", {"name": name, "alias": alias})
        else:
            record = server.json("/api/2.0/mlflow/model-versions/get", {"name": name, "version": str(version)})
    except NotFoundError as exc:
        which = f"@{alias}" if alias else f"version {version}"
        raise NotFoundError(f"models:/{name} {which} does not exist on {server.uri} ({exc})") from None
    return record["model_version"]


def bundle_of(record: dict, runtime: str) -> tuple[str, dict[str, str]]:
    """The bundle's artifact path and the sha256 of each file the runtime needs."""
    tags = {t["key"]: t["value"] for t in record.get("tags", [])}
    if BUNDLE_PATH_TAG not in tags or BUNDLE_SHA256_TAG not in tags:
        raise NotFoundError(
            f"version {record['version']} of {record['name']} has no serving bundle: run "
            f"`langdetect export --version {record['version']}` against this tracking server"
        )
    if tags.get("parity_passed") == "false":
        raise NotFoundError(
            f"version {record['version']} failed the int8 parity gate at its last export: its bundle is not served"
        )
    try:
        hashes = json.loads(tags[BUNDLE_SHA256_TAG])
    except ValueError:
        raise FetchError(f"version {record['version']}'s {BUNDLE_SHA256_TAG} tag is not JSON") from None
    for path in hashes:
        parts = path.split("/")
        if path.startswith("/") or "\\" in path or any(part in ("", ".", "..") for part in parts):
            raise IntegrityError(f"version {record['version']}'s bundle names a file outside it: {path!r}")
    wanted = {path: digest for path, digest in hashes.items() if path.startswith(RUNTIMES[runtime])}
    missing = [prefix for prefix in RUNTIMES[runtime] if not any(p.startswith(prefix) for p in wanted)]
    if missing:
        raise NotFoundError(f"version {record['version']}'s bundle has no {', '.join(missing)} files")
    return tags[BUNDLE_PATH_TAG].strip("/"), wanted


def download(server: Server, artifact_path: str, relative: str, dest: Path, expected: str) -> int:
    """Streams one file through the artifact proxy, hashing as it goes; a short body or another sha256
    raises IntegrityError."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    quoted = urllib.parse.quote(f"{artifact_path}/{relative}")
    try:
        with server.open(f"{ARTIFACT_PROXY}/{quoted}") as response, open(dest, "wb") as handle:
            announced = response.headers.get("Content-Length")
            for block in iter(lambda: response.read(1 << 20), b""):
                digest.update(block)
                handle.write(block)
                size += len(block)
    except NotFoundError:
        raise NotFoundError(
            f"{relative} is listed in the version's tags but missing from the artifact store ({artifact_path})"
        ) from None
    except (http.client.HTTPException, ConnectionError, TimeoutError) as exc:  # a short or reset body
        raise IntegrityError(f"{relative}: the download was cut off after {size:,} bytes ({exc})") from None
    except OSError as exc:  # this side: disk full, permissions
        raise FetchError(f"cannot write {dest}: {exc}") from None
    if announced is not None and int(announced) != size:
        raise IntegrityError(f"{relative}: the download was cut off: {size:,} of {int(announced):,} bytes")
    if digest.hexdigest() != expected:
        raise IntegrityError(
            f"{relative}: sha256 {digest.hexdigest()[:12]}… differs from the "
            f"{expected[:12]}… recorded on the model version; refusing to install it"
        )
    return size


def fetch_model(
    server: Server,
    out: Path,
    alias: str | None = None,
    version: str | None = None,
    name: str = DEFAULT_MODEL,
    runtime: str = "onnx",
) -> Fetched:
    """Resolve, download into a sibling temp dir, verify, then swap it into OUT with renames."""
    if bool(alias) == bool(version):
        raise FetchError("give exactly one of --alias and --version")
    started = time.monotonic()
    record = resolve_version(server, name, alias, version)
    artifact_path, hashes = bundle_of(record, runtime)
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        total = sum(download(server, artifact_path, rel, staging / rel, digest) for rel, digest in hashes.items())
        manifest = {
            "name": name,
            "version": str(record["version"]),
            "alias": alias or "",
            "run_id": record.get("run_id", ""),
            "tracking_uri": server.uri,
            "artifact_path": artifact_path,
            "runtime": runtime,
            "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "sha256": hashes,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
        install(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Fetched(out, str(record["version"]), alias, hashes, total, time.monotonic() - started)


def install(staging: Path, out: Path) -> None:
    """Renames within one directory, so OUT never holds a mix of two bundles: the complete new one
    replaces it in one rename when OUT is new (a pod's emptyDir); an existing OUT is first renamed
    aside (for that instant OUT is absent, never partial) and put back if the second rename fails."""
    if not out.exists():
        os.replace(staging, out)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    try:
        os.replace(out, retired / "bundle")
        try:
            os.replace(staging, out)
        except OSError:
            os.replace(retired / "bundle", out)
            raise
    except OSError as exc:
        raise FetchError(f"cannot install the bundle into {out}: {exc}") from None
    finally:
        shutil.rmtree(retired, ignore_errors=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Defaults come from the environment, so that a pod's ConfigMap configures the init container."""
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--alias", help="registry alias, e.g. champion (default $LANGDETECT_MODEL_ALIAS)")
    which.add_argument(
        "--version",
        help="registered version number (default $LANGDETECT_MODEL_VERSION; "
        "it wins over the alias, to keep a fleet on one version)",
    )
    parser.add_argument("--out", type=Path, required=True, help="bundle directory to write (LANGDETECT_MODEL_DIR)")
    parser.add_argument(
        "--name",
        default=os.environ.get("LANGDETECT_REGISTERED_MODEL", DEFAULT_MODEL),
        help="registered model name (default $LANGDETECT_REGISTERED_MODEL, else langdetect)",
    )
    parser.add_argument(
        "--runtime",
        choices=sorted(RUNTIMES),
        default=os.environ.get("LANGDETECT_FETCH_RUNTIME", "onnx"),
        help="onnx: the int8 model only (CPU image); all: torch too (GPU image); "
        "default $LANGDETECT_FETCH_RUNTIME, else onnx",
    )
    parser.add_argument("--tracking-uri", help="MLflow server URL (default $MLFLOW_TRACKING_URI)")
    parser.add_argument("--attempts", type=int, default=5, help="tries per request while the server is unreachable")
    parser.add_argument("--backoff", type=float, default=0.5, help="first wait between tries, doubled each time")


def run(args: argparse.Namespace) -> int:
    if not args.alias and not args.version:
        args.version = os.environ.get("LANGDETECT_MODEL_VERSION") or None
        args.alias = None if args.version else os.environ.get("LANGDETECT_MODEL_ALIAS")
    try:
        server = Server.from_env(args.tracking_uri, attempts=args.attempts, backoff_s=args.backoff)
        fetched = fetch_model(server, args.out, args.alias, args.version, args.name, args.runtime)
    except FetchError as exc:
        print(f"fetch-model: error: {exc}", file=sys.stderr)
        return exc.exit_code
    which = f"@{fetched.alias} = version {fetched.version}" if fetched.alias else f"version {fetched.version}"
    print(
        f"fetch-model: {args.name} {which}: {len(fetched.files)} files, {fetched.bytes / 1e6:.2f} MB, sha256 "
        f"verified, in {fetched.seconds:.2f} s -> {fetched.out}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m langdetect_ops.fetch", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
