"""Our receive-pack: quarantine, checks, pre-receive, atomic compare-and-swap, post-receive.

dulwich's stock handler runs pre-receive before reading the pack, buffers hook output and
ignores the compare-and-swap result; this one does what ``git receive-pack`` does.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dulwich.errors import GitProtocolError, HangupException
from dulwich.file import FileLocked
from dulwich.objects import Commit, ObjectID, valid_hexsha
from dulwich.protocol import (
    CAPABILITY_ATOMIC,
    CAPABILITY_DELETE_REFS,
    CAPABILITY_OFS_DELTA,
    CAPABILITY_QUIET,
    CAPABILITY_REPORT_STATUS,
    CAPABILITY_SIDE_BAND_64K,
    SIDE_BAND_CHANNEL_DATA,
    extract_capabilities,
)
from dulwich.refs import Ref
from dulwich.repo import Repo
from dulwich.server import Backend, ReceivePackHandler

from hooks.checks import BadObject, MissingObject, check_connected, valid_ref_name
from hooks.packs import PackDiskFull, PackHasBadObject, PackRejected, PackTooLarge, index_pack
from hooks.pipeline import DEPLOY_BRANCHES, ZERO_SHA, Push, RefUpdate, Stage
from hooks.quarantine import Quarantine
from hooks.sideband import Sideband
from shipway.errors import PushRejected
from shipway.files import locked
from shipway.log import get as get_log


class PushProtocolError(Exception):
    """The request is not a well-formed push; answered with HTTP 400 and one line."""


@dataclass(frozen=True, slots=True)
class ReceiveContext:
    """Who pushes where, and the limits that apply (built per request by the endpoint)."""

    app: str
    user: str
    request_id: str
    stage: Stage
    max_input_size: int
    max_ref_updates: int


@dataclass(frozen=True, slots=True)
class Unpacked:
    """How the pack went: ``status`` is the ``unpack`` line of the report ("ok" or the error)."""

    status: str = "ok"
    bad_object: str = ""  # fsck's reason, when an object in the pack was refused
    line: str = ""  # what the pusher reads, when it is not the status itself

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(slots=True)
class Command:
    update: RefUpdate
    status: str = "ok"  # "ok" or git's short ng reason

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class ShipwayReceivePackHandler(ReceivePackHandler):
    def __init__(self, backend: Backend, args: list[str], proto: Any, *,
                 context: ReceiveContext, stateless_rpc: bool = True,
                 advertise_refs: bool = False) -> None:
        super().__init__(backend, args, proto, stateless_rpc=stateless_rpc,
                         advertise_refs=advertise_refs)
        self.context = context
        self.log = get_log(app=context.app, user=context.user, request_id=context.request_id)

    def capabilities(self) -> Iterable[bytes]:
        return [
            CAPABILITY_REPORT_STATUS, CAPABILITY_DELETE_REFS, CAPABILITY_QUIET,
            CAPABILITY_ATOMIC, CAPABILITY_OFS_DELTA, CAPABILITY_SIDE_BAND_64K,
            b"object-format=sha1", b"agent=shipway/0.1",
        ]

    # reading the request --------------------------------------------------------------
    def _read_commands(self) -> list[Command]:
        commands: list[Command] = []
        try:
            line = self.proto.read_pkt_line()
        except HangupException:
            raise PushProtocolError("client sent no ref updates") from None
        if line is None:
            return commands
        line, caps = extract_capabilities(line)
        self.set_client_capabilities(caps)
        while line:
            if len(commands) >= self.context.max_ref_updates:
                raise PushProtocolError(
                    f"too many ref updates (at most {self.context.max_ref_updates} per push)"
                )
            parts = line.rstrip(b"\n").split(b" ")
            if len(parts) != 3 or not valid_hexsha(parts[0]) or not valid_hexsha(parts[1]):
                raise PushProtocolError(f"invalid ref update line {line[:80]!r}")
            old, new, ref = (p.decode("utf-8", "surrogateescape") for p in parts)
            commands.append(Command(RefUpdate(old.lower(), new.lower(), ref)))
            line = self.proto.read_pkt_line()
        return commands

    def set_client_capabilities(self, caps: Iterable[bytes]) -> None:
        # dulwich refuses capabilities it does not know; git sends push-options etc.
        known = set(self.capabilities())
        self._client_capabilities = {c for c in caps if c in known or c.startswith(b"agent=")}

    # the push -------------------------------------------------------------------------
    def handle(self) -> None:
        if self.advertise_refs:
            super().handle()
            return
        commands = self._read_commands()
        if not commands:
            return
        out = Sideband(self.proto.write_sideband
                       if self.has_capability(CAPABILITY_SIDE_BAND_64K) else None)
        repo: Repo = self.repo  # type: ignore[assignment]
        objects_dir = Path(repo.object_store.path)
        needs_pack = any(not c.update.is_delete for c in commands)
        self.log.info("push.received", refs=[c.update.ref for c in commands])
        quarantine = Quarantine(objects_dir)
        try:
            unpack = Unpacked()
            if needs_pack:
                unpack = self._receive_pack(repo, quarantine)
            if not unpack.ok:
                for c in commands:
                    c.status = "invalid object" if unpack.bad_object else "unpacker error"
                out.error(f"Push rejected: {unpack.bad_object}." if unpack.bad_object
                          else unpack.line or unpack.status)
            else:
                self._check_commands(repo, quarantine, commands, out)
            self.log.info("push.checked", unpack=unpack.status)
            push = Push(
                app=self.context.app, user=self.context.user,
                request_id=self.context.request_id, repo_path=Path(repo.path),
                objects=quarantine.store,
                updates=tuple(c.update for c in commands if c.ok),
            )
            prepared = None
            if push.updates:
                prepared = self._pre_receive(push, commands, out)
            try:
                if any(c.ok for c in commands):
                    self._update_refs(repo, quarantine, commands)
            except BaseException:
                self._abandon(push, prepared)
                raise
        finally:
            quarantine.discard()
        moved = tuple(c.update for c in commands if c.ok)
        done = replace(push, objects=repo.object_store, updates=moved)
        deploys = bool(moved) and done.deploy is not None and push.deploy == done.deploy
        if not deploys:
            self._abandon(push, prepared)  # e.g. a pending release whose ref did not move
        self._report(unpack.status, commands)
        if moved:
            self.log.info("push.accepted", refs=[u.ref for u in moved])
            if deploys:
                self._post_receive(done, prepared, out)
        else:
            self.log.info("push.rejected", reasons=[c.status for c in commands])
        self.proto.write_pkt_line(None)

    def _receive_pack(self, repo: Repo, quarantine: Quarantine) -> Unpacked:
        """Stream the pack into ``git index-pack`` in the quarantine (see hooks/packs.py)."""
        try:
            index_pack(self.proto.read, git_dir=Path(repo.controldir()), objects=quarantine.path,
                       alternate=quarantine.repo_objects,
                       max_input_size=self.context.max_input_size)
        except PackTooLarge as exc:
            return Unpacked(str(exc))
        except PackDiskFull as exc:
            self.log.warning("push.disk_full", error=str(exc))
            return Unpacked("unpack error: no space left on device", line=str(exc))
        except PackHasBadObject as exc:
            self.log.warning("push.bad_object", error=str(exc))
            return Unpacked("unpack error: invalid object", bad_object=str(exc))
        except PackRejected as exc:
            self.log.warning("push.bad_pack", error=str(exc))
            return Unpacked(f"unpack error: {exc}")
        self.log.info("push.unpacked")
        return Unpacked()

    def _check_commands(self, repo: Repo, quarantine: Quarantine,
                        commands: list[Command], out: Sideband) -> None:
        refs = repo.refs
        for c in commands:
            u = c.update
            ref = u.ref.encode("utf-8", "surrogateescape")
            if not valid_ref_name(ref):
                c.status = "funny refname"
                continue
            if u.is_delete and u.ref in DEPLOY_BRANCHES:
                c.status = "deletion of the deploy branch is not allowed"
                out.error(f"Deleting {u.branch} is not allowed: it is the branch Shipway deploys.")
                continue
            current = refs.as_dict().get(Ref(ref))
            current_hex = current.decode() if current else ZERO_SHA
            if current_hex != u.old:
                c.status = "fetch first"
                continue
            if u.is_delete:
                continue
            try:
                check_connected([u.new.encode()], is_new=quarantine.holds,
                                objects=quarantine.store)
            except MissingObject:
                c.status = "missing necessary objects"
                continue
            except BadObject as exc:
                c.status = "invalid object"
                out.error(f"Push rejected: {exc}.")
                continue
            if u.ref.startswith("refs/heads/") and not isinstance(
                quarantine.store[ObjectID(u.new.encode())], Commit
            ):
                c.status = "branch must point to a commit"
        if self.has_capability(CAPABILITY_ATOMIC) and not all(c.ok for c in commands):
            for c in commands:
                if c.ok:
                    c.status = "atomic push failed"

    def _pre_receive(self, push: Push, commands: list[Command], out: Sideband) -> Any:
        deploy = push.deploy
        if deploy is None:
            for u in push.updates:
                if u.ref.startswith("refs/heads/") and not u.is_delete:
                    out.line(f"-----> Pushed to non-deploy branch {u.branch}, skipping build "
                             "(only main or master deploys).")
                    break
        try:
            return self.context.stage.pre_receive(push, out)
        except PushRejected as exc:
            out.error(exc.message)
            reason = exc.reason
        except Exception:  # noqa: BLE001 - never drop the connection on a stage bug
            self.log.error("push.stage_crashed", stage="pre_receive",
                           error=traceback.format_exc())
            out.error("Push rejected: internal error in the build stage (see the server log).")
            reason = "pre-receive hook declined"
        for c in commands:
            if c.ok:
                c.status = reason
        return None

    def _update_refs(self, repo: Repo, quarantine: Quarantine, commands: list[Command]) -> None:
        atomic = self.has_capability(CAPABILITY_ATOMIC)
        with locked(Path(repo.path) / "shipway-refs.lock"):
            current = repo.refs.as_dict()
            for c in commands:
                if not c.ok:
                    continue
                had = current.get(Ref(c.update.ref.encode("utf-8", "surrogateescape")))
                if (had.decode() if had else ZERO_SHA) != c.update.old:
                    c.status = "fetch first"
            if atomic and not all(c.ok for c in commands):
                for c in commands:
                    if c.ok:
                        c.status = "atomic push failed"
            if not any(c.ok for c in commands):
                return
            quarantine.migrate()
            repo.object_store._update_pack_cache()
            applied: list[Command] = []
            for c in commands:
                if not c.ok:
                    continue
                c.status = _set_ref(repo, c.update)
                if c.ok:
                    applied.append(c)
                elif atomic:
                    for done in applied:
                        _undo_ref(repo, done.update)
                    for other in commands:
                        if other.ok or other in applied:
                            other.status = "atomic push failed"
                    return

    def _post_receive(self, push: Push, prepared: Any, out: Sideband) -> None:
        try:
            self.context.stage.post_receive(push, prepared, out)
        except Exception as exc:  # noqa: BLE001 - the refs moved; report and keep serving
            message = getattr(exc, "message", None)
            if message is None:
                self.log.error("push.stage_crashed", stage="post_receive",
                               error=traceback.format_exc())
                message = "Release failed: internal error (see the server log)."
            out.error(str(message))

    def _abandon(self, push: Push, prepared: Any) -> None:
        if prepared is None:
            return
        try:
            self.context.stage.abandon(push, prepared)
        except Exception:  # noqa: BLE001 - the refs are as they were; the log says what stayed
            self.log.error("push.stage_crashed", stage="abandon", error=traceback.format_exc())

    def _report(self, unpack: str, commands: list[Command]) -> None:
        if not self.has_capability(CAPABILITY_REPORT_STATUS):
            return
        lines = [b"unpack " + (b"ok" if unpack == "ok" else unpack.encode()[:300]) + b"\n"]
        for c in commands:
            ref = c.update.ref.encode("utf-8", "surrogateescape")
            if c.ok:
                lines.append(b"ok " + ref + b"\n")
            else:
                lines.append(b"ng " + ref + b" " + c.status.encode() + b"\n")
        if self.has_capability(CAPABILITY_SIDE_BAND_64K):
            buf = b"".join(_pkt(line) for line in lines) + b"0000"
            self.proto.write_sideband(SIDE_BAND_CHANNEL_DATA, buf)
        else:
            for line in lines:
                self.proto.write_pkt_line(line)


def _pkt(data: bytes) -> bytes:
    return f"{len(data) + 4:04x}".encode() + data


def _set_ref(repo: Repo, update: RefUpdate) -> str:
    ref = update.ref.encode("utf-8", "surrogateescape")
    old = update.old.encode()
    try:
        if update.is_delete:
            ok = repo.refs.remove_if_equals(ref, old)  # type: ignore[arg-type]
        elif update.is_create:
            ok = repo.refs.add_if_new(ref, update.new.encode())  # type: ignore[arg-type]
        else:
            ok = repo.refs.set_if_equals(ref, old, update.new.encode())  # type: ignore[arg-type]
    except FileLocked:
        return "failed to update ref"
    except OSError:
        return "failed to update ref"
    return "ok" if ok else "fetch first"


def _undo_ref(repo: Repo, update: RefUpdate) -> None:
    ref = update.ref.encode("utf-8", "surrogateescape")
    with contextlib.suppress(Exception):
        if update.is_create:
            repo.refs.remove_if_equals(ref, update.new.encode())  # type: ignore[arg-type]
        elif update.is_delete:
            repo.refs.set_if_equals(ref, None, update.old.encode())  # type: ignore[arg-type]
        else:
            repo.refs.set_if_equals(ref, update.new.encode(), update.old.encode())  # type: ignore[arg-type]


__all__ = ["ShipwayReceivePackHandler", "ReceiveContext", "PushProtocolError", "GitProtocolError"]
