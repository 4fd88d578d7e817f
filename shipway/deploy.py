"""The deploy pipeline behind ``git push``: build before the ref moves, release after.

::

    pre_receive:  source tree in quarantine -> builder.build -> slug   (BuildFailed rejects)
    post_receive: release.deploy -> release vN, launched, traffic switched
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dulwich.objects import Commit, ObjectID

from builder.build import BuildResult, build
from hooks.pipeline import Output, Push
from release.config import config_vars
from release.deploy import deploy
from shipway.accounts import Accounts
from shipway.layout import Layout
from shipway.log import get as get_log
from shipway.settings import Settings

DockerFactory = Callable[[], Any]


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

    def pre_receive(self, push: Push, out: Output) -> BuildResult | None:
        target = push.deploy
        if target is None:
            return None
        app = Accounts(self.layout).app(push.app)
        docker = self.docker_factory()
        try:
            return build(push.objects, target.new, app=app, layout=self.layout,
                         settings=self.settings, config=config_vars(self.layout, push.app),
                         out=out, docker=docker)
        finally:
            docker.close()

    def post_receive(self, push: Push, prepared: BuildResult | None, out: Output) -> None:
        target = push.deploy
        if target is None or prepared is None:
            return
        docker = self.docker_factory()
        try:
            release = deploy(
                self.layout, self.settings, app=push.app, slug=prepared.slug, user=push.user,
                commit=target.new, commit_description=commit_description(push, target.new),
                output_path=prepared.log_path, out=out, docker=docker,
            )
        finally:
            docker.close()
        get_log(app=push.app, release=release.version, request_id=push.request_id).info(
            "deploy.finished", status=release.status, slug=prepared.slug.id
        )
