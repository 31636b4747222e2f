"""A cache of validated job files: an unchanged file costs no YAML parsing, no
pydantic validation and no schema building (about 0.1 s of CPU on every cron run).

- **Key**: a digest of the file's bytes and of xfer's version. An entry lists the
  code that validated the file (the modules of xfer loaded then: spec models, the
  kinds named, their imports; and pydantic, pydantic-core, PyYAML) by path, size and
  mtime: a hit needs them unchanged, so an edited or reinstalled module is a miss.
- **Environment**: an entry lists the variables the file read (`${VAR}`) and a keyed
  digest of their values; a hit needs the same values. The digest key is random,
  kept in the cache directory, so an entry alone says nothing about those values.
- **Secrets** never land in the cache: every password (a `Secret`, in a host block
  or in a URL) is stored as the span of the file's text it came from, and read again
  from the file by that span when the entry is used (the file is the one whose bytes
  are the key, so the span still holds the password; no YAML parser needed:
  `engine/yamlscalar.py`). A secret written so that its text is not its value (a
  quoted scalar with escapes, one folded over lines) makes the file uncacheable.
- **What**: the file's records (`engine/records.py`), pickled: a hit imports neither
  PyYAML nor pydantic nor any spec model.
- **Where**: `$XDG_CACHE_HOME/xfer/jobs` (default `~/.cache/xfer/jobs`), a directory
  of the user's own that others cannot write (entries are pickles; a directory that
  fails that check is not used); `XFER_CACHE=off` turns the cache off. The newest
  `MAX_ENTRIES` entries are kept.

Only job files whose specs all come from xfer's own kinds are cached (the key covers
only xfer's code). Anything unexpected while reading an entry is a miss."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import xfer
from xfer.records import Record, model_of
from xfer.urls import Secret, Url, parse_url
from xfer.yamlscalar import Mark, Span, expand_env, read_scalar

if TYPE_CHECKING:
    from xfer.jobfile import JobFile

MAX_ENTRIES = 256
_FORMAT = 3
#: Packages whose code decides what a valid file loads as, besides xfer's own.
_VALIDATING_PACKAGES = ("pydantic", "pydantic_core", "yaml")

#: Where a secret sits in the file's text and how to read it there: the span of its
#: scalar, and "value" (the scalar is the secret) or "url" (the password of a URL).
SecretPlace = tuple[Span, str]


class _Uncacheable(Exception):
    """This file's validated data cannot be cached (a secret in an unexpected place)."""


def _directory() -> Path | None:
    if os.environ.get("XFER_CACHE", "").lower() in ("off", "0", "no", "false"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "xfer", "jobs")


def _private(directory: Path) -> bool:
    """Whether `directory` is ours and closed to others' writes (we unpickle from it)."""
    try:
        info = directory.stat()
    except OSError:
        return False
    return info.st_uid == os.getuid() and not info.st_mode & 0o022


def _code_in_use() -> list[tuple[str, int, int]]:
    """Path, size and mtime of the code that validated a file: xfer's modules loaded
    so far (the kinds named, their protocols) and the validating packages."""
    engine_dir = os.path.dirname(xfer.__file__)
    paths = {
        module.__file__
        for module in list(sys.modules.values())
        if (getattr(module, "__file__", None) or "").startswith(engine_dir)
        or getattr(module, "__name__", "") in _VALIDATING_PACKAGES
    }
    return sorted(_stamp(path) for path in paths)


def _stamp(path: str) -> tuple[str, int, int]:
    try:
        info = os.stat(path)
    except OSError:
        return path, -1, -1
    return path, info.st_size, info.st_mtime_ns


def _env_digest(directory: Path, names: list[str]) -> bytes:
    """A keyed digest of the values of `names` (unset and empty differ)."""
    key_path = directory / "key"
    try:
        key = key_path.read_bytes()
    except FileNotFoundError:
        key = os.urandom(32)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key)
    digest = hashlib.blake2b(key=key)
    for name in names:
        value = os.environ.get(name)
        digest.update(f"{name}\0{'-' if value is None else '=' + value}\0".encode())
    return digest.digest()


def _entry_path(directory: Path, raw: bytes) -> Path:
    version = f"{_FORMAT}\0{sys.version}\0{xfer.__version__}\0".encode()
    return directory / hashlib.sha256(version + raw).hexdigest()


class Entry:
    """A cached valid file: its job count at once, its models on demand."""

    __slots__ = ("jobs", "secret_places", "payload")

    def __init__(self, jobs: int, secret_places: list[SecretPlace], payload: bytes) -> None:
        self.jobs = jobs
        self.secret_places = secret_places
        self.payload = payload

    def job_file(self, path: Path, raw: bytes) -> JobFile | None:
        """The file's models, its secrets read again from `raw`; None if that fails."""
        from xfer.jobfile import JobFile

        try:
            values = _read_secrets(raw.decode("utf-8"), str(path), self.secret_places) if self.secret_places else []
            unpickler = pickle.Unpickler(io.BytesIO(self.payload))
            unpickler.persistent_load = values.__getitem__  # type: ignore[method-assign]
            defaults, hosts, jobs = unpickler.load()
        except Exception:  # a moved class, a changed file: validate instead
            return None
        return JobFile(path=path, defaults=defaults, hosts=hosts, jobs=jobs)


def lookup(raw: bytes) -> Entry | None:
    """The entry for a file with these bytes, valid in this environment, or None."""
    directory = _directory()
    if directory is None or not _private(directory):
        return None
    try:
        header = pickle.loads(_entry_path(directory, raw).read_bytes())
        if any(_stamp(path) != (path, size, mtime) for path, size, mtime in header["code"]):
            return None
        if header["env_digest"] != _env_digest(directory, header["env_names"]):
            return None
        return Entry(header["jobs"], header["secret_places"], header["payload"])
    except Exception:  # no entry, or a damaged one: a miss
        return None


def store(raw: bytes, file: JobFile, data: Any, env_used: set[str]) -> None:
    """Remember a validated file (quietly nothing when it cannot be cached)."""
    directory = _directory()
    if directory is None or not all(model_of(job).startswith("xfer.") for job in file.jobs):  # type: ignore[arg-type]
        return
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(directory):
            return
        places, payload = _pickle_without_secrets(file, data, raw.decode("utf-8"))
        names = sorted(env_used)
        header = {
            "code": _code_in_use(),
            "env_names": names,
            "env_digest": _env_digest(directory, names),
            "jobs": len(file.jobs),
            "secret_places": places,
            "payload": payload,
        }
        target = _entry_path(directory, raw)
        temporary = target.with_name(f".{target.name}.{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            pickle.dump(header, out, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, target)
        _prune(directory)
    except (OSError, _Uncacheable, pickle.PicklingError, TypeError, AttributeError):
        return


def _prune(directory: Path) -> None:
    entries = sorted(
        (entry for entry in os.scandir(directory) if entry.name != "key" and not entry.name.startswith(".")),
        key=lambda entry: entry.stat().st_mtime_ns,
    )
    for entry in entries[:-MAX_ENTRIES]:
        os.unlink(entry.path)


# --------------------------------------------------------------------------- secrets


def _find_secrets(value: Any, path: tuple[Any, ...], found: dict[int, tuple[tuple[Any, ...], str]]) -> None:
    """Every Secret under `value`, by id, with its path (YAML keys, list indexes) and how it is read there."""
    if isinstance(value, Secret):
        found[id(value)] = (path, "value")
    elif isinstance(value, Url):
        if value.password is not None:
            found[id(value.password)] = (path, "url")
    elif isinstance(value, Record):
        for name, item in vars(value).items():
            _find_secrets(item, (*path, name), found)
    elif isinstance(value, dict):
        for key, item in value.items():
            _find_secrets(item, (*path, key), found)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _find_secrets(item, (*path, index), found)


def _span_at(data: Any, path: tuple[Any, ...]) -> Span:
    """The span of the scalar at `path` in the loaded file (`yamlload`'s spans)."""
    parent = data
    try:
        for step in path[:-1]:
            parent = parent[step]
        span = (parent.value_spans if isinstance(parent, dict) else parent.item_spans)[path[-1]]
    except (KeyError, IndexError, TypeError, AttributeError):
        raise _Uncacheable(f"nothing at {path}") from None
    if span is None:
        raise _Uncacheable(f"no text at {path}")
    return span


def _secret_at(text: str, source: str, place: SecretPlace) -> Any:
    """The secret at `place` of the file's text, as the records hold it."""
    span, how = place
    written = read_scalar(text, span)
    if written is None:
        raise _Uncacheable("a secret whose text is not its value")
    value = expand_env(written, Mark(0, 0), source)
    return parse_url(value).password if how == "url" else Secret(value)


def _read_secrets(text: str, source: str, places: list[SecretPlace]) -> list[Any]:
    return [_secret_at(text, source, place) for place in places]


def _pickle_without_secrets(file: JobFile, data: Any, text: str) -> tuple[list[SecretPlace], bytes]:
    """The models pickled with every secret replaced by its index in the places list;
    raises _Uncacheable unless each secret reads back the same from the file's text."""
    found: dict[int, tuple[tuple[Any, ...], str]] = {}
    models = (file.defaults, file.hosts, file.jobs)
    for key, value in (("defaults", file.defaults), ("hosts", file.hosts), ("jobs", file.jobs)):
        _find_secrets(value, (key,), found)
    places: list[SecretPlace] = []
    index_of: dict[int, int] = {}

    def persistent_id(obj: Any) -> int | None:
        if type(obj) is not Secret:
            return None
        if id(obj) not in found:
            raise _Uncacheable("a secret outside the places searched")
        if id(obj) not in index_of:
            path, how = found[id(obj)]
            place = (_span_at(data, path), how)
            if _secret_at(text, "", place) != obj:
                raise _Uncacheable(f"the secret at {path} does not read back")
            index_of[id(obj)] = len(places)
            places.append(place)
        return index_of[id(obj)]

    out = io.BytesIO()
    pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.persistent_id = persistent_id  # type: ignore[method-assign]
    pickler.dump(models)
    return places, out.getvalue()

