"""What a push hands to the deploy pipeline, and what a pipeline stage must provide.

The receive-pack handler calls ``stage.pre_receive(push, out)`` with the pack still in
quarantine (``push.objects`` sees it, the app's repository does not); raising
``PushRejected`` rejects the push and nothing moves. After the refs moved it calls
``stage.post_receive(push, prepared, out)`` with whatever ``pre_receive`` returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from dulwich.object_store import BaseObjectStore

ZERO_SHA = "0" * 40
DEPLOY_BRANCHES = ("refs/heads/main", "refs/heads/master")


@dataclass(frozen=True, slots=True)
class RefUpdate:
    old: str
    new: str
    ref: str

    @property
    def is_delete(self) -> bool:
        return self.new == ZERO_SHA

    @property
    def is_create(self) -> bool:
        return self.old == ZERO_SHA

    @property
    def branch(self) -> str:
        return self.ref.removeprefix("refs/heads/")


@dataclass(frozen=True, slots=True)
class Push:
    """One push: who, to which app, and which refs it moves."""

    app: str
    user: str
    request_id: str
    repo_path: Path
    objects: BaseObjectStore
    updates: tuple[RefUpdate, ...]

    @property
    def deploy(self) -> RefUpdate | None:
        """The update that deploys: ``main`` wins over ``master`` when both are pushed."""
        for branch in DEPLOY_BRANCHES:
            for update in self.updates:
                if update.ref == branch and not update.is_delete:
                    return update
        return None


class Output(Protocol):
    """Where a stage writes what the pusher reads (``remote: ...``), one line at a time."""

    def line(self, text: str) -> None:
        """Write one line, shown at once as ``remote: text``."""

    def error(self, text: str) -> None:
        """Write one fatal line, shown as ``remote:  !     text``."""


class Stage(Protocol):
    def pre_receive(self, push: Push, out: Output) -> Any:
        """Build; raise ``PushRejected`` to decline. The return value goes to post_receive."""

    def post_receive(self, push: Push, prepared: Any, out: Output) -> None:
        """Release and launch; errors are shown but cannot undo the ref update."""

    def abandon(self, push: Push, prepared: Any) -> None:
        """The refs did not move after pre_receive succeeded: undo what it prepared."""


class AnnounceStage:
    """The trivial stage: says what was received, deploys nothing (used until a builder is wired)."""

    def pre_receive(self, push: Push, out: Output) -> Any:
        deploy = push.deploy
        if deploy is None:
            return None
        out.line(f"-----> Received {deploy.branch} at {deploy.new[:7]}")
        return deploy.new

    def post_receive(self, push: Push, prepared: Any, out: Output) -> None:
        if prepared:
            out.line(f"-----> {push.app} updated to {str(prepared)[:7]}")

    def abandon(self, push: Push, prepared: Any) -> None:
        pass
