"""The lake tier: Spark reading a published lake, and S3 on loopback. Collected only with ``-m lake``.

``make test`` must stay fast and must not need Java or the ~491 MB ``lake`` extra, so these tests are not
even collected unless the marker expression names ``lake`` (``make test-lake``, which runs
``scripts/lake_tier.sh install`` first). Every test here is marked ``lake``.

Two session fixtures, each started once and stopped however the session ends:
- ``spark``: a local-mode SparkSession (``local[2]``, no UI, UTC, loopback only).
- ``s3_server``: moto's S3 server on a free loopback port, checking signatures against one fixed key pair
  (``moto_keyed_server.py`` says why plain ``moto_server`` will not do), with helpers for the standard AWS
  variables and for making buckets.

Missing Java, pyspark or moto skips the tests that need them, with the reason; with
``COSTLENS_LAKE_REQUIRED`` set (CI) it fails them instead, so a broken install cannot pass as skips.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any, NoReturn

import pytest

HERE = Path(__file__).resolve().parent
# Read at import: the autouse ``isolated_state`` fixture (tests/conftest.py) strips COSTLENS_* from each
# test's environment.
REQUIRED = bool(os.environ.get("COSTLENS_LAKE_REQUIRED"))
START_TIMEOUT = 20.0

# Fake credentials, recognisable on purpose: secret-leak tests grep every output and file for SECRET_KEY.
ACCESS_KEY = "AKIACOSTLENSTEST0001"
SECRET_KEY = "costlens-test-SECRET-do-not-leak-7f3a9c2e1b"
REGION = "us-east-1"

# Without credentials the AWS SDKs (pyarrow's C++ one, botocore) ask the EC2 metadata service at
# 169.254.169.254; no test may send traffic off loopback.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lake: the lake tier, Spark and S3 on loopback (make test-lake)")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if "lake" not in (config.getoption("markexpr", "") or ""):
        return True
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.lake)


def missing(reason: str) -> NoReturn:
    """Skip for a missing prerequisite, or fail when the tier is required (CI)."""
    if REQUIRED:
        pytest.fail(f"{reason}; COSTLENS_LAKE_REQUIRED is set (run `bash scripts/lake_tier.sh install`)")
    pytest.skip(f"{reason} (run `bash scripts/lake_tier.sh install`)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def die_with_parent() -> None:
    """In the child, before exec: SIGTERM it when pytest dies, even by SIGKILL (Linux prctl)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


# --- S3 (moto) -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    region: str
    log_path: Path

    def env(self) -> dict[str, str]:
        """The standard AWS variables pointing at this server (boto3 and ``FileSystem.from_uri`` honour them)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def filesystem(self, **overrides: Any) -> Any:
        """A ``pyarrow.fs.S3FileSystem`` on this server; keyword arguments override (``secret_key="bad"``)."""
        from pyarrow import fs

        options: dict[str, Any] = {
            "endpoint_override": self.endpoint,
            "scheme": "http",
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "region": self.region,
        }
        return fs.S3FileSystem(**(options | overrides))

    def make_bucket(self, name: str) -> str:
        """Create bucket ``name`` (3-63 lowercase letters, digits, hyphens); returns ``s3://name``."""
        self.filesystem(allow_bucket_creation=True).create_dir(name)
        return f"s3://{name}"


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP status (403 for an unsigned request) means it is serving
    except OSError:
        return False


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1:<free port>, signatures checked against ACCESS_KEY / SECRET_KEY."""
    if find_spec("moto") is None or find_spec("flask") is None:
        missing("moto[server] is not installed (the `lake` extra)")
    port = free_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto_server.log"
    env = os.environ | {"MOTO_TEST_ACCESS_KEY": ACCESS_KEY, "MOTO_TEST_SECRET_KEY": SECRET_KEY}
    command = [sys.executable, str(HERE / "moto_keyed_server.py"), "-H", "127.0.0.1", "-p", str(port)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            preexec_fn=die_with_parent,
        )  # fmt: skip
    server = S3Server(f"http://127.0.0.1:{port}", ACCESS_KEY, SECRET_KEY, REGION, log_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not answers(server.endpoint + "/"):
            if proc.poll() is not None:
                pytest.fail(
                    f"moto server exited ({proc.returncode}) during start-up; {log_path}:\n{tail(log_path)}"
                )
            if time.monotonic() >= deadline:
                pytest.fail(
                    f"moto server not answering after {START_TIMEOUT:g} s; {log_path}:\n{tail(log_path)}"
                )
            time.sleep(0.1)
        yield server
    finally:
        stop(proc)


# --- Spark -----------------------------------------------------------------------------------------


def java_found() -> bool:
    java_home = os.environ.get("JAVA_HOME")
    return shutil.which("java") is not None or bool(java_home and (Path(java_home) / "bin" / "java").exists())


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A local-mode SparkSession: two cores, no UI, UTC, loopback only, scratch space in a temp dir."""
    if find_spec("pyspark") is None:
        missing("pyspark is not installed (the `lake` extra)")
    if not java_found():
        missing("no Java runtime for Spark (java not on PATH, no JAVA_HOME)")
    from spark_recipe import local_spark

    session = local_spark(tmp_path_factory.mktemp("spark"), "costlens-lake-tests")
    try:
        yield session
    finally:
        session.stop()
