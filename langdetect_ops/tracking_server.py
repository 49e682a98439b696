"""`langdetect mlflow-server`: MLflow's tracking server over the project's store, with authentication.

It serves the same sqlite store and artifact folder that the embedded default writes (mlflow.db and
mlartifacts/ beside it), so every run and version trained without a server is there; it proxies
artifacts (--serve-artifacts), which is how `langdetect fetch-model` downloads bundles; and it runs
MLflow's basic-auth app (the `mlflow[auth]` extra): nobody reads the registry without a user.

Users: `admin` (the password from MLFLOW_AUTH_ADMIN_PASSWORD, else generated) and a read-only
`langdetect-fetcher` that pods use. Passwords and the CSRF secret are kept in STATE/credentials.json
(mode 600), so a restart keeps them. One web worker and no job runner: ~250 MB, ready in ~5 s.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from langdetect_ops import config
from langdetect_ops.errors import UserError
from langdetect_ops.processes import free_port, stop_group, wait_http

ADMIN = "admin"
READER = "langdetect-fetcher"
STATE_DIR = config.ARTIFACTS_DIR / "mlflow-server"


@dataclass
class Credentials:
    admin_password: str
    reader_password: str
    secret_key: str

    @classmethod
    def load_or_create(cls, path: Path) -> Credentials:
        """The saved passwords win: MLflow sets the admin's password only when it creates the user, so a
        new MLFLOW_AUTH_ADMIN_PASSWORD would not reach an existing user store (rotate it with MLflow's
        update-password API instead). The environment seeds a new store."""
        saved = json.loads(path.read_text()) if path.exists() else {}
        made = cls(
            admin_password=saved.get("admin_password")
            or os.environ.get("MLFLOW_AUTH_ADMIN_PASSWORD")
            or secrets.token_urlsafe(18),
            reader_password=saved.get("reader_password") or secrets.token_urlsafe(18),
            secret_key=saved.get("secret_key")
            or os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY")
            or secrets.token_hex(32),
        )
        if made.__dict__ != saved:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as handle:  # created 0600
                json.dump(made.__dict__, handle, indent=1)
            os.replace(handle.name, path)
        os.chmod(path, 0o600)
        return made


@dataclass
class StoreLayout:
    """The sqlite store a server serves, and where its artifacts live."""

    backend_uri: str
    artifacts: Path

    @classmethod
    def from_tracking_uri(cls, uri: str | None = None) -> StoreLayout:
        uri = uri or config.tracking_uri()
        if not uri.startswith("sqlite:///"):
            raise UserError(
                f"mlflow-server serves a sqlite store; MLFLOW_TRACKING_URI is {uri!r}. Unset it (the "
                "project's mlflow.db) or point it at sqlite:///PATH"
            )
        return cls(uri, Path(uri[len("sqlite:///") :]).resolve().parent / "mlartifacts")


class TrackingServer:
    """`mlflow server` in its own process group on loopback; a context manager that stops it."""

    def __init__(
        self,
        store: StoreLayout | None,
        state_dir: Path = STATE_DIR,
        port: int | None = None,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
    ):
        self.store, self.state_dir = store, Path(state_dir).resolve()
        self.host, self.port = host, port or free_port()
        self.url = f"http://{host}:{self.port}"
        self.credentials = Credentials.load_or_create(self.state_dir / "credentials.json")
        self.log_path = log_path or self.state_dir / "server.log"
        self.proc: subprocess.Popen | None = None

    @classmethod
    def attach(cls, url: str, state_dir: Path = STATE_DIR) -> TrackingServer:
        """A server started earlier (by `langdetect deploy local`), reached at `url` with the credentials
        kept in `state_dir`; stop() leaves it running."""
        host, port = url.removeprefix("http://").rsplit(":", 1)
        return cls(None, state_dir, port=int(port), host=host)

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            self.store.backend_uri,
            "--artifacts-destination",
            str(self.store.artifacts),
            "--serve-artifacts",
            "--app-name",
            "basic-auth",
            "--workers",
            "1",
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]

    def env(self) -> dict[str, str]:
        auth_ini = self.state_dir / "basic_auth.ini"
        auth_ini.write_text(
            "[mlflow]\ndefault_permission = READ\n"
            f"database_uri = sqlite:///{self.state_dir / 'basic_auth.db'}\n"
            f"admin_username = {ADMIN}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        )
        return {
            **os.environ,
            "MLFLOW_AUTH_CONFIG_PATH": str(auth_ini),
            "MLFLOW_AUTH_ADMIN_PASSWORD": self.credentials.admin_password,
            "MLFLOW_FLASK_SERVER_SECRET_KEY": self.credentials.secret_key,
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }

    def start(self, timeout: float = 90) -> TrackingServer:
        self.store.artifacts.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                self.command(),
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            wait_http(f"{self.url}/health", lambda: self.proc.poll() is None, timeout, what="MLflow server")
            self.ensure_reader()
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            raise UserError(f"{exc}; log {self.log_path}:\n{self.log_path.read_text()[-2000:]}") from None
        except urllib.error.HTTPError as exc:
            self.stop()
            raise UserError(
                f"the MLflow server refused the admin's credentials from "
                f"{self.state_dir / 'credentials.json'} (HTTP {exc.code}): its user store "
                f"({self.state_dir / 'basic_auth.db'}) was made with another password"
            ) from None
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc)

    def __enter__(self) -> TrackingServer:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    def admin_env(self) -> dict[str, str]:
        """What an mlflow client (export, promote) needs to write through this server."""
        return {
            "MLFLOW_TRACKING_URI": self.url,
            "MLFLOW_TRACKING_USERNAME": ADMIN,
            "MLFLOW_TRACKING_PASSWORD": self.credentials.admin_password,
        }

    def reader_env(self) -> dict[str, str]:
        """What a pod's fetcher gets from its Secret: read access only."""
        return {
            "MLFLOW_TRACKING_URI": self.url,
            "MLFLOW_TRACKING_USERNAME": READER,
            "MLFLOW_TRACKING_PASSWORD": self.credentials.reader_password,
        }

    def call(self, method: str, path: str, payload: dict | None = None, user: str = ADMIN) -> dict:
        from langdetect_ops.fetch import Server

        password = self.credentials.admin_password if user == ADMIN else self.credentials.reader_password
        request = urllib.request.Request(
            f"{self.url}{path}",
            method=method,
            data=json.dumps(payload).encode() if payload is not None else None,
            headers={**Server(self.url, user, password).headers(), "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else {}

    def ensure_reader(self) -> None:
        """The fetcher's user, READ by default_permission; its password follows credentials.json."""
        try:
            self.call(
                "POST",
                "/api/2.0/mlflow/users/create",
                {"username": READER, "password": self.credentials.reader_password},
            )
        except urllib.error.HTTPError as exc:
            if exc.code not in (400, 409):  # RESOURCE_ALREADY_EXISTS
                raise
            self.call(
                "PATCH",
                "/api/2.0/mlflow/users/update-password",
                {"username": READER, "password": self.credentials.reader_password},
            )

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """What the MLflow UI calls when a user moves an alias on the model-version page."""
        self.call(
            "POST", "/api/2.0/mlflow/registered-models/alias", {"name": name, "alias": alias, "version": str(version)}
        )


def serve_forever(port: int, host: str) -> int:
    """`langdetect mlflow-server`: runs until Ctrl-C or SIGTERM."""
    import signal

    server = TrackingServer(StoreLayout.from_tracking_uri(), port=port, host=host)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        server.start()  # stops what it started if interrupted
    except KeyboardInterrupt:
        return 130
    with server:
        print(
            f"MLflow server on {server.url} (store {server.store.backend_uri}, artifacts {server.store.artifacts})\n"
            f"users: {ADMIN} and {READER} (read-only); passwords in {server.state_dir / 'credentials.json'}\n"
            f"log: {server.log_path}. Ctrl-C stops it.",
            flush=True,
        )
        try:
            server.proc.wait()
        except KeyboardInterrupt:
            return 0
    return server.proc.returncode or 0
