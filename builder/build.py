"""The pre-receive build: pushed commit -> buildpacks in a container -> slug in the archive.

::

    build(objects, commit, app=..., layout=..., settings=..., config=..., out=..., docker=...)
      source tree (dulwich -> tar)  -> /app        in a fresh build container
      buildpacks + ENV_DIR (tar)    -> /tmp         (the archive API; nothing unpacked on the host)
      build cache (cache.tar)       -> /tmp/cache
      run _driver.sh: detect, compile, release      (output streamed line by line)
      /app  -> normalised gzip tarball -> SlugArchive.add
      /tmp/cache -> cache.tar

A push whose tree, buildpack, stack image and config equal an earlier build's reuses its slug.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from builder.container import BuildContainer, Limits
from builder.disk import BuildDisk
from builder.procfile import parse_procfile
from builder.runtime import choose_runtime
from builder.slug import Slug, SlugArchive, SlugTooLarge, human_size, size_text, write_slug
from builder.source import commit_tree, read_root_file, write_source_tar
from hooks.pipeline import Output
from shipway.accounts import App, now_iso
from shipway.errors import BuildFailed, DiskFull, PushRejected
from shipway.files import is_disk_full, private_file
from shipway.layout import Layout
from shipway.log import get as get_log
from shipway.redact import redact, secrets_of
from shipway.settings import Settings

BUILDPACKS_DIR = Path(__file__).parent / "buildpacks"
BUILTIN_ORDER = ("python", "static", "procfile")
DRIVER = "_driver.sh"
# pyc files get checked hashes instead of mtimes, so the same build gives the same bytes
SOURCE_DATE_EPOCH = "315532800"
EXIT_UNDETECTED, EXIT_COMPILE, EXIT_RELEASE = 10, 11, 12


@dataclass(frozen=True, slots=True)
class BuildResult:
    """What the build hands the release stage (the log file is the release's output)."""

    slug: Slug
    log_path: Path
    reused: bool


@dataclass(frozen=True, slots=True)
class Buildpacks:
    """The buildpacks a build offers, as a tar for ``/tmp`` plus what identifies them."""

    tar: bytes
    description: str
    digest: str
    configured: str


class BuildLog:
    """Tees every build line to the pusher and to ``logs/builds/APP-TIME-COMMIT.log``.

    Config values are shown as ``[REDACTED]`` (shipway.redact); the file is 0600 in a 0700
    folder.
    """

    def __init__(self, layout: Layout, app: str, commit: str, out: Output,
                 secrets: tuple[str, ...] = ()) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self.path = layout.logs_dir / "builds" / f"{app}-{stamp}-{commit[:7]}.log"
        private_file(self.path)
        self._file = self.path.open("w", encoding="utf-8", errors="replace")
        self.out = out
        self.secrets = secrets

    def line(self, text: str) -> None:
        text = redact(text, self.secrets)
        self.out.line(text)
        self._keep(text)

    def error(self, text: str) -> None:
        self._keep(f" !     {redact(text, self.secrets)}")

    def _keep(self, text: str) -> None:
        # the file is a copy of what the pusher reads: a full disk loses it, not the build
        with contextlib.suppress(OSError):
            self._file.write(text + "\n")
            self._file.flush()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()


def build(objects: Any, commit: str, *, app: App, layout: Layout, settings: Settings,
          config: dict[str, str], out: Output, docker: Any) -> BuildResult:
    """Build ``commit`` into a slug; raises BuildFailed (or PushRejected) with the line to show."""
    import docker as docker_sdk

    log = BuildLog(layout, app.name, commit, out, secrets_of(config))
    events = get_log(app=app.name, commit=commit)
    try:
        try:
            result = _build(objects, commit, app=app, layout=layout, settings=settings,
                            config=config, log=log, docker=docker)
        except docker_sdk.errors.DockerException as exc:
            detail = getattr(exc, "explanation", None) or str(exc)
            raise BuildFailed(f"Push rejected: Docker failed during the build ({detail}).",
                              hint="The server log has the details.") from exc
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            raise DiskFull("building (the slug archive or the build cache)", push=True) from None
    except PushRejected as exc:
        log.error(exc.message)
        events.info("build.failed", error=exc.message, log=str(log.path))
        raise
    finally:
        log.close()
    events.info("build.succeeded", slug=result.slug.id, reused=result.reused)
    return result


def _build(objects: Any, commit: str, *, app: App, layout: Layout, settings: Settings,
           config: dict[str, str], log: BuildLog, docker: Any) -> BuildResult:
    started = time.monotonic()
    tree = commit_tree(objects, commit)
    procfile_bytes = read_root_file(objects, tree, "Procfile")
    procfile = parse_procfile(procfile_bytes.decode("utf-8", "replace")) if procfile_bytes else {}
    runtime = choose_runtime(objects, tree, app=app, settings=settings, docker=docker, out=log)
    image = runtime.build_image
    image_id = _image_id(docker, image)
    packs = buildpacks(app.buildpack)
    key = build_key(tree.id.decode(), packs.digest, image_id, config)
    archive = SlugArchive(layout)
    earlier = find_build(archive, app.name, key)
    if earlier is not None:
        log.line(f"-----> No changes since {_built_as(layout, earlier)}; "
                 f"reusing slug {earlier.short_id}")
        return BuildResult(earlier, log.path, True)

    log.line(f"-----> Building on the {runtime.description} stack")
    for note in runtime.notes:
        log.line(note)
    limits = Limits(memory=settings.build_memory, cpus=settings.build_cpus,
                    pids=settings.build_pids, timeout=settings.build_timeout,
                    output_limit=settings.build_output_limit)
    environment = {"STACK": runtime.description, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH,
                   "SHIPWAY_BUILDPACK": packs.configured, **runtime.environment}
    cache_tar = layout.cache_dir(app.name) / "cache.tar"
    with BuildDisk(layout.builds_dir, settings.build_disk) as disk, BuildContainer(
            docker, image, ["/bin/bash", f"/tmp/{DRIVER}"], app=app.name, limits=limits,
            environment=environment, home=str(layout.home), volumes=disk.binds) as box:
        with tempfile.TemporaryFile() as source:
            write_source_tar(objects, commit, source)
            source.seek(0)
            box.put("/", source)
        box.put("/tmp", packs.tar)
        box.put("/tmp", env_tar(config))
        if cache_tar.exists():
            with cache_tar.open("rb") as fh:
                box.put("/tmp", fh)
        result = box.run(log.line)
        if result.stopped:
            raise BuildFailed("Build stopped: the server is shutting down; push rejected.",
                              hint="Push again once it is back.")
        if disk.full:
            raise BuildFailed(f"Build ran out of disk: a build may write {size_text(settings.build_disk)}"
                              " (build.disk); push rejected.")
        name = _read_result(box, "name").strip() or "Custom"
        if result.timed_out:
            raise BuildFailed(f"Build timed out after {_duration(limits.timeout)}; "
                              "push rejected.")
        if result.exit_code == EXIT_UNDETECTED:
            raise BuildFailed(f"App not compatible with buildpack: {packs.configured}"
                              if packs.configured else
                              "No default language could be detected for this app.")
        if result.exit_code == EXIT_RELEASE:
            raise BuildFailed(f"Push rejected, the {name} buildpack's bin/release failed.")
        if result.exit_code != 0:
            raise BuildFailed(f"Push rejected, failed to compile {name} app.")
        release_doc = _read_result(box, "release.yml")
        process_types = _process_types(release_doc, procfile, log)
        layout.slugs_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=layout.slugs_dir, prefix=".tmp-build-",
                                         suffix=".tar.gz", delete=False) as gz:
            gz_path = Path(gz.name)
            try:
                with box.get("/app", max_bytes=settings.slug_max_unpacked_size,
                             too_large=_unpacked_too_large(settings)) as built:
                    write_slug(built, gz, threads=os.cpu_count() or 2,
                               max_size=settings.slug_max_size)
            except BaseException as exc:
                gz.close()
                gz_path.unlink(missing_ok=True)
                if is_disk_full(exc):
                    raise DiskFull("writing the slug", push=True) from None
                raise
        log.line(f"-----> Compressing... done, {human_size(gz_path.stat().st_size)}")
        _save_cache(box, cache_tar)
    slug = archive.add(
        gz_path, app=app.name, commit=commit, created_at=now_iso(), stack=runtime.run_image,
        runtime=runtime.label,
        buildpack=packs.configured or f"{packs.description} ({name})",
        process_types=process_types, build_duration=round(time.monotonic() - started, 3),
        build_key=key,
    )
    log.line(f"-----> Slug {slug.short_id} ({human_size(slug.size)}) built in "
             f"{slug.build_duration:.1f}s")
    return BuildResult(slug, log.path, False)


def _unpacked_too_large(settings: Settings) -> Any:
    def refuse(seen: int) -> BuildFailed:
        return SlugTooLarge(f"Compiled slug size: {size_text(seen)}+ unpacked is too large "
                            f"(max is {size_text(settings.slug_max_unpacked_size)} unpacked).")

    return refuse


def _built_as(layout: Layout, slug: Slug) -> str:
    """``the v3 build`` when a release holds the slug, else ``the build of abc1234``."""
    from release.store import ReleaseStore

    with contextlib.suppress(Exception):  # naming the release is a courtesy, never a failure
        for release in reversed(ReleaseStore(layout).list(slug.app)):
            if release.slug == slug.id:
                return f"the {release.name} build"
    return f"the build of {slug.commit[:7]}"


def _image_id(docker: Any, image: str) -> str:
    import docker as docker_sdk

    try:
        return str(docker.images.get(image).id)
    except docker_sdk.errors.ImageNotFound:
        raise BuildFailed(f"The stack image {image} does not exist on this server.") from None


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g} minutes" if seconds >= 60 else f"{seconds:g} seconds"


def _read_result(box: BuildContainer, name: str) -> str:
    """A small file the driver left in /tmp/shipway ('' when it is not there)."""
    import docker as docker_sdk

    try:
        with box.get(f"/tmp/shipway/{name}") as spool, tarfile.open(fileobj=spool) as tar:
            member = tar.next()
            data = tar.extractfile(member) if member is not None and member.isreg() else None
            return data.read(1 << 20).decode("utf-8", "replace") if data else ""
    except docker_sdk.errors.NotFound:
        return ""


def _process_types(release_doc: str, procfile: dict[str, str], log: BuildLog) -> dict[str, str]:
    log.line("-----> Discovering process types")
    defaults: dict[str, str] = {}
    try:
        parsed = yaml.safe_load(release_doc) if release_doc.strip() else {}
    except yaml.YAMLError:
        raise BuildFailed("Push rejected, bin/release did not print valid YAML.") from None
    if isinstance(parsed, dict) and isinstance(parsed.get("default_process_types"), dict):
        defaults = {str(k): str(v) for k, v in parsed["default_process_types"].items()}
    if procfile:
        log.line("       Procfile declares types -> " + ", ".join(procfile))
    else:
        log.line("       Procfile declares types -> (none)")
    extra = {k: v for k, v in defaults.items() if k not in procfile}
    if extra:
        log.line("       Default types for buildpack -> " + ", ".join(extra))
    return {**defaults, **procfile}


def _save_cache(box: BuildContainer, cache_tar: Path) -> None:
    """Keep /tmp/cache for the next build, as the tar Docker gives (never unpacked here)."""
    cache_tar.parent.mkdir(parents=True, exist_ok=True)
    with box.get("/tmp/cache") as spool, tempfile.NamedTemporaryFile(
            dir=cache_tar.parent, prefix=".tmp-", delete=False) as tmp:
        try:
            while chunk := spool.read(1 << 20):
                tmp.write(chunk)
            tmp.flush()
            os.fsync(tmp.fileno())
        except BaseException:
            tmp.close()
            Path(tmp.name).unlink(missing_ok=True)
            raise
    os.replace(tmp.name, cache_tar)


def build_key(tree: str, buildpack_digest: str, image_id: str, config: dict[str, str]) -> str:
    """What decides a build's result: the same key means the same slug can be reused."""
    doc = {"tree": tree, "buildpack": buildpack_digest, "stack": image_id,
           "config": dict(sorted(config.items()))}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode("utf-8")).hexdigest()


def find_build(archive: SlugArchive, app: str, key: str) -> Slug | None:
    for slug in archive.all():
        if slug.app == app and slug.build_key == key and archive.exists(slug.id):
            return slug
    return None


def env_tar(config: dict[str, str]) -> bytes:
    """ENV_DIR as Heroku gives it (``env/KEY`` holding the value), plus empty ``cache/``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        # the folders the driver writes to, owned by the build user whatever the stack made them
        for folder in ("cache", "shipway"):
            tar.addfile(_entry(folder, tarfile.DIRTYPE, 0o755))
        tar.addfile(_entry("env", tarfile.DIRTYPE, 0o700))
        for key, value in sorted(config.items()):
            data = value.encode("utf-8")
            info = _entry(f"env/{key}", tarfile.REGTYPE, 0o600)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _entry(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode = kind, mode
    info.uid = info.gid = 1000
    info.uname = info.gname = "app"
    info.mtime = int(SOURCE_DATE_EPOCH)
    return info


def buildpacks(configured: str) -> Buildpacks:
    """Shipway's built-in buildpacks in detection order, or the app's own (folder or git URL)."""
    if not configured:
        folders = [(f"{i:02d}-{name}", BUILDPACKS_DIR / name)
                   for i, name in enumerate(BUILTIN_ORDER, start=1)]
        tar, digest = _buildpacks_tar(folders)
        return Buildpacks(tar, "builtin:" + ",".join(BUILTIN_ORDER), digest, "")
    local = Path(configured)
    if local.is_dir():
        tar, digest = _buildpacks_tar([("00-custom", local)])
        return Buildpacks(tar, configured, digest, configured)
    with _cloned(configured) as folder:
        tar, digest = _buildpacks_tar([("00-custom", folder)])
    return Buildpacks(tar, configured, digest, configured)


@contextlib.contextmanager
def _cloned(url: str) -> Iterator[Path]:
    """A shallow clone of a buildpack's git repository (``URL#ref`` picks a branch or tag)."""
    repo, _, ref = url.partition("#")
    with tempfile.TemporaryDirectory(prefix="shipway-buildpack-") as tmp:
        target = Path(tmp) / "buildpack"
        argv = ["git", "clone", "--quiet", "--depth", "1"]
        argv += ["--branch", ref] if ref else []
        argv += ["--", repo, str(target)]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_TERMINAL_PROMPT": "0",
               "HOME": tmp}
        try:
            subprocess.run(argv, check=True, capture_output=True, timeout=300, env=env)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
            raise BuildFailed(f"Could not fetch the buildpack {url}.") from None
        yield target


def _buildpacks_tar(folders: list[tuple[str, Path]]) -> tuple[bytes, str]:
    """A tar of ``buildpacks/NAME/...`` plus the driver, and a digest of its content."""
    digest = hashlib.sha256()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(_entry("buildpacks", tarfile.DIRTYPE, 0o755))
        _add_file(tar, BUILDPACKS_DIR / DRIVER, DRIVER, digest)
        for name, folder in folders:
            if not (folder / "bin" / "detect").exists():
                raise BuildFailed(f"The buildpack {folder} has no bin/detect.")
            tar.addfile(_entry(f"buildpacks/{name}", tarfile.DIRTYPE, 0o755))
            for path in sorted(folder.rglob("*")):
                rel = path.relative_to(folder)
                if rel.parts[0] == ".git":
                    continue
                arcname = f"buildpacks/{name}/{rel.as_posix()}"
                if path.is_symlink():
                    info = _entry(arcname, tarfile.SYMTYPE, 0o777)
                    info.linkname = os.readlink(path)
                    tar.addfile(info)
                    digest.update(f"L{arcname}\0{info.linkname}\0".encode())
                elif path.is_dir():
                    tar.addfile(_entry(arcname, tarfile.DIRTYPE, 0o755))
                elif path.is_file():
                    _add_file(tar, path, arcname, digest)
    return buffer.getvalue(), digest.hexdigest()


def _add_file(tar: tarfile.TarFile, path: Path, arcname: str, digest: Any) -> None:
    data = path.read_bytes()
    mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
    info = _entry(arcname, tarfile.REGTYPE, mode)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
    digest.update(f"F{arcname}\0{mode}\0".encode() + hashlib.sha256(data).digest())
