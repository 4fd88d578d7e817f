"""The deploy pipeline behind ``git push``: build before the ref moves, release after.

::

    pre_receive:  source tree in quarantine -> builder.build -> slug   (BuildFailed rejects)
                  -> release vN written, pending            (DiskFull rejects: the ref stays)
    post_receive: release vN launched, traffic switched
    abandon:      the ref did not move -> release vN removed
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dulwich.objects import Commit, ObjectID

from builder.build import BuildResult, build
from hooks.pipeline import Output, Push
from release.config import config_vars
from release.deploy import PendingDeploy, prepare_deploy
from shipway.accounts import Accounts
from shipway.errors import DiskFull
from shipway.layout import Layout
from shipway.log import get as get_log
from shipway.settings import Settings

DockerFactory = Callable[[], Any]


@dataclass(frozen=True, slots=True)
class Prepared:
    """What pre_receive hands on: the build and its pending release (app lock held)."""

    build: BuildResult
    pending: PendingDeploy


def commit_description(push: Push, sha: str) -> str:
    obj = push.objects[ObjectID(sha.encode())]
    if not isinstance(obj, Commit):
        return ""
    message: bytes = obj.message
    return message.decode("utf-8", "replace").strip().split("\n", 1)[0][:200]


class DeployStage:
    """The real pipeline stage: builds in pre-receive, releases and launches in post-receive."""

    def __init__(self, layout: Layout, settings: Settings, *, docker_factory: DockerFactory) -> None:
        self.layout = layout
        self.settings = settings
        self.docker_factory = docker_factory

    def pre_receive(self, push: Push, out: Output) -> Prepared | None:
        target = push.deploy
        if target is None:
            return None
        app = Accounts(self.layout).app(push.app)
        docker = self.docker_factory()
        try:
            built = build(push.objects, target.new, app=app, layout=self.layout,
                          settings=self.settings, config=config_vars(self.layout, push.app),
                          out=out, docker=docker)
        finally:
            docker.close()
        try:
            pending = prepare_deploy(
                self.layout, app=push.app, slug=built.slug, user=push.user, commit=target.new,
                commit_description=commit_description(push, target.new),
                output_path=built.log_path)
        except DiskFull as exc:
            raise DiskFull(exc.what, push=True) from None
        return Prepared(built, pending)

    def post_receive(self, push: Push, prepared: Prepared | None, out: Output) -> None:
        if prepared is None:
            return
        docker = self.docker_factory()
        try:
            release = prepared.pending.launch(self.settings, out=out, docker=docker)
        finally:
            docker.close()
        get_log(app=push.app, release=release.version, request_id=push.request_id).info(
            "deploy.finished", status=release.status, slug=prepared.build.slug.id
        )

    def abandon(self, push: Push, prepared: Prepared | None) -> None:
        if prepared is not None:
            prepared.pending.discard()
