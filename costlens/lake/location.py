"""Where a lake lives: a local directory or an S3-compatible bucket, behind one small interface.

A local lake is written with plain file calls (a write goes to a temporary name, is flushed to
disk and renamed into place, so a reader sees the whole file or nothing). An S3 lake uses
pyarrow's S3 filesystem (DuckDB cannot reach S3 here: its httpfs extension would be downloaded):
an object appears whole when its PUT (or multipart upload) completes. The endpoint comes from
``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``), credentials from the standard AWS variables;
none of them is stored, printed or written to the lake, and any error text that carries one has it
replaced by ``***``.

Files are written in a local staging directory before they are placed: inside the lake under
``_staging/`` for a local lake (so placing is a rename), in the temporary directory for S3. Its name
records its owner (``<id>.<pid>.<process start>.<host>``), given at creation, so a publish killed
with ``kill -9`` is recognisable later without any lock: a publish removes a staging directory left
by a process of this host that is gone (same pid and start time no longer running), or one of
another host (or of an unknown owner) last changed more than 24 hours ago; a live attempt's
directory, here or on another machine sharing a directory lake, is never touched.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import time
import urllib.parse
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from costlens.errors import ConfigError, LakeError
from costlens.store.files import fsync_directory

__all__ = ["LakeLocation", "LocalLake", "S3Lake", "open_location"]

_SECRET_VARS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")
# A staging directory of another host cannot be checked for a live owner; no publish runs this long.
STAGING_MAX_AGE_S = 24 * 3600
S3_STAGING_PREFIX = "costlens-publish-"


class LakeLocation(ABC):
    """The operations a publish and a reader need; paths are relative to the lake's root, with '/'."""

    uri: str

    @abstractmethod
    def read_bytes(self, rel: str) -> bytes: ...

    @abstractmethod
    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write the whole object at once: a reader sees the old one, or the new one, never part."""

    @abstractmethod
    def put_file(self, local: Path, rel: str) -> None:
        """Place a finished local file at ``rel`` (rename on the same disk, one upload on S3)."""

    @abstractmethod
    def file_sizes(self, rel_dir: str) -> dict[str, int]:
        """Every file under ``rel_dir`` (recursively, one listing), as paths relative to the root,
        with its size in bytes; {} if none."""

    def list_files(self, rel_dir: str) -> list[str]:
        """Every file under ``rel_dir`` (recursively), as paths relative to the root; [] if none."""
        return sorted(self.file_sizes(rel_dir))

    @abstractmethod
    def delete(self, rel: str) -> None:
        """Remove a file; one already gone is not an error."""

    @abstractmethod
    def check_reachable(self) -> None:
        """Fail early, with one clear line, when the lake cannot be reached or written."""

    @abstractmethod
    def staging_dir(self) -> AbstractContextManager[Path]:
        """A local directory to write files in before they are placed, removed on leaving."""

    @abstractmethod
    def remove_dead_staging(self) -> list[Path]:
        """Remove the staging directories of attempts that died (module docstring); the ones removed."""


class LocalLake(LakeLocation):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = str(root)

    def _path(self, rel: str) -> Path:
        return self.root / rel

    def read_bytes(self, rel: str) -> bytes:
        try:
            return self._path(rel).read_bytes()
        except FileNotFoundError:
            raise
        except OSError as e:
            raise LakeError(f"lake {self.uri}: cannot read {rel}: {e.strerror or e}") from e

    def write_bytes(self, rel: str, data: bytes) -> None:
        path = self._path(rel)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            fsync_directory(path.parent)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise LakeError(f"lake {self.uri}: cannot write {rel}: {e.strerror or e}") from e

    def put_file(self, local: Path, rel: str) -> None:
        path = self._path(rel)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(local, path)
        except OSError as e:
            raise LakeError(f"lake {self.uri}: cannot place {rel}: {e.strerror or e}") from e

    def file_sizes(self, rel_dir: str) -> dict[str, int]:
        base = self._path(rel_dir)
        if not base.is_dir():
            return {}
        out = {}
        for dirpath, _, names in os.walk(base):
            for name in names:
                if not name.startswith("."):
                    path = Path(dirpath) / name
                    try:
                        size = path.stat().st_size
                    except OSError:  # removed while listed (another publish's cleanup)
                        continue
                    out[path.relative_to(self.root).as_posix()] = size
        return out

    def delete(self, rel: str) -> None:
        try:
            self._path(rel).unlink(missing_ok=True)
        except OSError as e:
            raise LakeError(f"lake {self.uri}: cannot delete {rel}: {e.strerror or e}") from e

    def check_reachable(self) -> None:
        """The lake's directory exists or can be created, and is a directory."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise LakeError(f"lake {self.uri}: cannot create the lake directory: {e.strerror or e}") from e
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise LakeError(f"lake {self.uri}: cannot write there: permission denied")

    def staging_dir(self) -> AbstractContextManager[Path]:
        """Inside the lake (same disk, so placing a file is a rename), under ``_staging/``."""
        return _staging(self.root / "_staging", "", self.uri, mode=0o777)  # others may sweep it

    def remove_dead_staging(self) -> list[Path]:
        return _remove_dead(self.root / "_staging", "")

    def local_path(self, rel: str) -> str:
        return str(self._path(rel))


class S3Lake(LakeLocation):
    def __init__(self, uri: str, bucket: str, prefix: str, env: Mapping[str, str]) -> None:
        from pyarrow import fs as pafs

        self.uri = uri
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._secrets = [env[v] for v in _SECRET_VARS if env.get(v)]
        endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
        options: dict[str, Any] = {
            "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            "connect_timeout": 5,
            "request_timeout": 30,
            "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=3),
        }
        if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
            options["access_key"] = env["AWS_ACCESS_KEY_ID"]
            options["secret_key"] = env["AWS_SECRET_ACCESS_KEY"]
            if env.get("AWS_SESSION_TOKEN"):
                options["session_token"] = env["AWS_SESSION_TOKEN"]
        if endpoint:
            parts = urllib.parse.urlsplit(endpoint)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(
                    f"AWS_ENDPOINT_URL: expected http(s)://host[:port], got {_redact_url(endpoint)!r}"
                )
            options["scheme"] = parts.scheme
            options["endpoint_override"] = parts.netloc.rsplit("@", 1)[-1] + parts.path.rstrip("/")
        try:
            self.fs = pafs.S3FileSystem(**options)
        except Exception as e:  # pyarrow raises plain exceptions for bad options
            raise LakeError(self._message("cannot set up S3 access", e)) from e

    def _key(self, rel: str) -> str:
        return "/".join(p for p in (self.bucket, self.prefix, rel) if p)

    def _message(self, what: str, e: BaseException) -> str:
        text = " ".join(str(e).split())
        for secret in self._secrets:
            text = text.replace(secret, "***")
        hint = _s3_hint(text)
        return f"lake {self.uri}: {what}: {hint or text[:300]}"

    def read_bytes(self, rel: str) -> bytes:
        try:
            with self.fs.open_input_file(self._key(rel)) as f:
                return bytes(f.read())
        except FileNotFoundError:
            raise
        except OSError as e:
            if "NoSuchKey" in str(e) or "Path does not exist" in str(e):
                raise FileNotFoundError(rel) from e
            raise LakeError(self._message(f"cannot read {rel}", e)) from e

    def write_bytes(self, rel: str, data: bytes) -> None:
        try:
            with self.fs.open_output_stream(self._key(rel)) as f:
                f.write(data)
        except OSError as e:
            raise LakeError(self._message(f"cannot write {rel}", e)) from e

    def put_file(self, local: Path, rel: str) -> None:
        from pyarrow import fs as pafs

        try:
            pafs.copy_files(str(local), self._key(rel), destination_filesystem=self.fs)
        except OSError as e:
            raise LakeError(self._message(f"cannot upload {rel}", e)) from e

    def file_sizes(self, rel_dir: str) -> dict[str, int]:
        from pyarrow import fs as pafs

        base = self._key(rel_dir)
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        except OSError as e:
            raise LakeError(self._message(f"cannot list {rel_dir or '/'}", e)) from e
        root = self._key("")
        cut = len(root) + 1 if root else 0
        return {i.path[cut:]: i.size for i in infos if i.type == pafs.FileType.File}

    def delete(self, rel: str) -> None:
        try:
            self.fs.delete_file(self._key(rel))
        except FileNotFoundError:
            pass
        except OSError as e:
            if "NoSuchKey" in str(e) or "does not exist" in str(e):
                return
            raise LakeError(self._message(f"cannot delete {rel}", e)) from e

    def staging_dir(self) -> AbstractContextManager[Path]:
        """In the temporary directory (``TMPDIR``): each file is uploaded from there."""
        return _staging(Path(tempfile.gettempdir()), S3_STAGING_PREFIX, self.uri, mode=0o700)

    def remove_dead_staging(self) -> list[Path]:
        return _remove_dead(Path(tempfile.gettempdir()), S3_STAGING_PREFIX)

    def check_reachable(self) -> None:
        """Fail early, with one clear line, when the bucket cannot be reached or read."""
        from pyarrow import fs as pafs

        try:
            info = self.fs.get_file_info(self.bucket)
        except OSError as e:
            raise LakeError(self._message("cannot reach the bucket", e)) from e
        if info.type == pafs.FileType.NotFound:
            raise LakeError(f"lake {self.uri}: bucket {self.bucket!r} does not exist (create it first)")


@dataclass(frozen=True)
class _Owner:
    pid: int
    start: str  # the process's start time in clock ticks since boot; "" where unknown
    host: str


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "unknown"


def _process_start(pid: int) -> str:
    """With the pid, this names one process even after the pid is reused (Linux ``/proc``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""  # field 22, starttime


def _staging_owner(name: str) -> _Owner | None:
    parts = name.split(".", 3)
    if len(parts) != 4 or not parts[1].isdigit() or not (parts[2].isdigit() or parts[2] == ""):
        return None
    return _Owner(int(parts[1]), parts[2], parts[3])


def _running(owner: _Owner) -> bool:
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass  # EPERM: it exists, as another user
    now = _process_start(owner.pid)
    return not (owner.start and now and now != owner.start)


def _is_dead(entry: Path, owner: _Owner | None) -> bool:
    if owner is not None and owner.host == _host():
        return not _running(owner)
    try:
        changed = entry.lstat().st_mtime
    except OSError:
        return False
    return time.time() - changed > STAGING_MAX_AGE_S


@contextmanager
def _staging(parent: Path, prefix: str, uri: str, *, mode: int) -> Iterator[Path]:
    """A staging directory named by its owner (see the module docstring), removed on leaving.

    ``mode`` (less the umask): private in a shared temporary directory; in a lake, open to the other
    users who publish there, so that theirs can remove it if this process dies."""
    pid = os.getpid()
    path = parent / f"{prefix}{uuid.uuid4().hex}.{pid}.{_process_start(pid)}.{_host()}"
    try:
        parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=mode)
    except OSError as e:
        raise LakeError(
            f"lake {uri}: cannot create a staging directory in {parent}: {e.strerror or e}"
        ) from e
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _remove_dead(parent: Path, prefix: str) -> list[Path]:
    """Remove the staging directories under ``parent`` whose attempt died; safe beside live ones."""
    try:
        entries = sorted(parent.iterdir())
    except OSError:
        return []
    removed = []
    for entry in entries:
        if not entry.name.startswith(prefix) or entry.is_symlink() or not entry.is_dir():
            continue
        if _is_dead(entry, _staging_owner(entry.name[len(prefix) :])):
            shutil.rmtree(entry, ignore_errors=True)  # another publish may be removing it too
            if not entry.exists():
                removed.append(entry)
    return removed


def _s3_hint(text: str) -> str | None:
    """A short reason for the S3 errors users meet; None to show the error as it is."""
    checks = (
        (r"InvalidAccessKeyId|SignatureDoesNotMatch|SIGNATURE_DOES_NOT_MATCH|INVALID_ACCESS_KEY_ID|ACCESS_DENIED|AccessDenied|Forbidden|403",
         "access denied: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"),
        (r"NETWORK_CONNECTION|curlCode: (6|7|28)|Couldn't connect|Could not connect|Could not resolve|Connection refused|timed out|Timeout",
         "cannot connect to the endpoint: check AWS_ENDPOINT_URL"),
        (r"NoSuchBucket", "the bucket does not exist"),
    )  # fmt: skip
    for pattern, hint in checks:
        if re.search(pattern, text):
            return hint
    return None


def _redact_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def open_location(uri: str, env: Mapping[str, str] | None = None) -> LakeLocation:
    """``s3://bucket/prefix`` or a directory path (``file://`` allowed)."""
    env = dict(os.environ if env is None else env)
    text = uri.strip()
    if not text:
        raise ConfigError("--lake: empty URI (a directory, or s3://bucket/prefix)")
    if text.startswith("s3://"):
        rest = text[len("s3://") :]
        bucket, _, prefix = rest.partition("/")
        if "@" in bucket or not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", bucket):
            raise ConfigError(f"--lake {_redact_url(text)!r}: not a valid bucket name")
        return S3Lake(f"s3://{bucket}/{prefix.strip('/')}".rstrip("/"), bucket, prefix, env)
    if "://" in text and not text.startswith("file://"):
        scheme = text.split("://", 1)[0]
        raise ConfigError(f"--lake: unsupported scheme {scheme!r} (a directory, or s3://bucket/prefix)")
    path = Path(text[len("file://") :] if text.startswith("file://") else text)
    return LocalLake(path)
