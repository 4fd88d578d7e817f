"""Admins' slug archive commands: ``slugs``, ``slugs:info``, ``slugs:contents``, ``slugs:cat``,
``slugs:diff``, ``slugs:download``, ``slugs:verify``, ``slugs:prune``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from builder.slug import human_size
from shipway.client import app_from_remote, backend_for, json_dump
from shipway.errors import ShipwayError, UsageError
from shipway.files import TEMP_PREFIX
from shipway.names import check_app_name
from shipway.openapi import diff_json, entry_json, prune_json, slug_json, verify_json
from shipway.slugtools import DEFAULT_KEEP, SlugEntry, SlugUse


def _app(args: argparse.Namespace) -> str | None:
    """``-a APP``; for a ``vN`` reference, else the app of the ``platform`` git remote."""
    if getattr(args, "app", None):
        return check_app_name(args.app)
    refs = [getattr(args, name, None) or "" for name in ("id", "old", "new")]
    if any(r[:1] == "v" and r[1:].isdigit() for r in refs):
        return app_from_remote()
    return None


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _releases(use: SlugUse) -> str:
    return ", ".join(f"{r.app} v{r.version}" for r in use.releases) or "(none)"


def cmd_slugs(args: argparse.Namespace) -> int:
    uses = backend_for(args).slugs(_app(args))
    if args.json:
        print(json_dump([slug_json(u.slug, u) for u in uses]))
        return 0
    if not uses:
        print("No slugs.")
        return 0
    rows = [["ID", "APPS", "SIZE", "CREATED", "RELEASES", "CURRENT"]]
    rows += [[u.slug.short_id, ",".join(u.apps), human_size(u.slug.size), u.slug.created_at,
              _releases(u), "yes" if u.current else "no"] for u in uses]
    print("=== Slugs")
    for line in _table(rows):
        print(line)
    return 0


def cmd_slugs_info(args: argparse.Namespace) -> int:
    use = backend_for(args).slug(args.id, _app(args))
    slug = use.slug
    if args.json:
        print(json_dump(slug_json(slug, use)))
        return 0
    types = ", ".join(f"{k}: {v}" for k, v in sorted(slug.process_types.items())) or "(none)"
    rows = [
        ("Id", slug.id), ("App", slug.app), ("Commit", slug.commit or "(none)"),
        ("Stack", slug.stack or "(default)"), ("Runtime", slug.runtime or "(none)"),
        ("Buildpack", slug.buildpack or "(none)"),
        ("Process types", types), ("Size", f"{human_size(slug.size)} ({slug.size} bytes)"),
        ("Checksum", slug.checksum), ("Built in", f"{slug.build_duration:.1f}s"),
        ("Created", slug.created_at), ("Releases", _releases(use)),
        ("Current", "yes" if use.current else "no"),
    ]
    width = max(len(k) for k, _ in rows) + 1
    print(f"=== Slug {slug.short_id}")
    for key, value in rows:
        print(f"{(key + ':').ljust(width)} {value}")
    return 0


def entry_line(entry: SlugEntry, long: bool) -> str:
    name = entry.path + ("/" if entry.kind == "dir" else "")
    if entry.kind == "symlink":
        name += f" -> {entry.target}"
    if not long:
        return name
    return f"{entry.mode_text} {entry.size:>10} {name}"


def cmd_slugs_contents(args: argparse.Namespace) -> int:
    found = backend_for(args).slug_contents(args.id, args.path or "", _app(args))
    if args.json:
        print(json_dump([entry_json(e) for e in found]))
        return 0
    if args.path and not found:
        raise ShipwayError(f"No {args.path} in slug {args.id}.")
    for entry in found:
        print(entry_line(entry, args.long))
    return 0


def cmd_slugs_cat(args: argparse.Namespace) -> int:
    out = sys.stdout.buffer
    for chunk in backend_for(args).slug_file(args.id, args.path, _app(args)):
        out.write(chunk)
    out.flush()
    return 0


def cmd_slugs_diff(args: argparse.Namespace) -> int:
    found = backend_for(args).slug_diff(args.old, args.new, _app(args))
    if args.json:
        print(json_dump(diff_json(found)))
        return 0
    print(f"=== {found.old[:12]} -> {found.new[:12]}")
    if not (found.added or found.removed or found.changed):
        print("No changes.")
        return 0
    for entry in found.added:
        print(f"A  {entry_line(entry, False)}")
    for entry in found.removed:
        print(f"D  {entry_line(entry, False)}")
    for old, new in found.changed:
        detail = f" ({old.size} -> {new.size} bytes)" if old.size != new.size else ""
        print(f"M  {entry_line(new, False)}{detail}")
    print(f"{len(found.added)} added, {len(found.removed)} removed, "
          f"{len(found.changed)} changed")
    return 0


def cmd_slugs_download(args: argparse.Namespace) -> int:
    backend = backend_for(args)
    slug = backend.slug(args.id, _app(args)).slug
    target = Path(args.output or f"{slug.id}.tar.gz")
    partial = target.with_name(f"{TEMP_PREFIX}{target.name}")
    size = 0
    try:
        with partial.open("wb") as fh:
            for chunk in backend.slug_tarball(slug.id):
                fh.write(chunk)
                size += len(chunk)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    print(f"Downloading slug {slug.short_id} to {target}... done, {human_size(size)}")
    return 0


def cmd_slugs_verify(args: argparse.Namespace) -> int:
    results = backend_for(args).slug_verify(args.id)
    if args.json:
        print(json_dump([verify_json(r) for r in results]))
    else:
        for result in results:
            mark = "ok" if result.ok else "CORRUPT"
            print(f"{result.slug_id[:12]}  {mark}  {result.message}")
    bad = [r for r in results if not r.ok]
    if bad:
        print(f" !    {len(bad)} of {len(results)} slugs failed verification.", file=sys.stderr)
        return 1
    if not args.json:
        print(f"{len(results)} slugs verified.")
    return 0


def cmd_slugs_prune(args: argparse.Namespace) -> int:
    if args.dry_run and args.force:
        raise UsageError("Give --dry-run or --force, not both.")
    plan = backend_for(args).slug_prune(args.keep, dry_run=not args.force)
    if args.json:
        print(json_dump(prune_json(plan)))
        return 0
    verb = "Would remove" if plan.dry_run else "Removed"
    for slug in plan.remove:
        print(f"{verb} {slug.short_id}  {slug.app}  {human_size(slug.size)}  {slug.created_at}")
    print(f"{verb} {len(plan.remove)} slugs ({human_size(plan.freed)}), "
          f"keeping {len(plan.keep)}.")
    if plan.dry_run and plan.remove:
        print("This was a dry run: run slugs:prune --force to delete them.")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("slugs", help="list every slug (admins)")
    p.add_argument("-a", "--app", help="only this app's slugs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_slugs)

    p = sub.add_parser("slugs:info", help="a slug's metadata and releases (admins)")
    p.add_argument("id", help="slug id or unique prefix, or vN with -a APP")
    p.add_argument("-a", "--app")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_slugs_info)

    p = sub.add_parser("slugs:contents", help="files inside a slug (admins)")
    p.add_argument("id")
    p.add_argument("path", nargs="?")
    p.add_argument("-l", "--long", action="store_true", help="show mode and size")
    p.add_argument("--json", action="store_true")
    p.add_argument("-a", "--app", help="app of a vN reference")
    p.set_defaults(func=cmd_slugs_contents)

    p = sub.add_parser("slugs:cat", help="print one file of a slug (admins)")
    p.add_argument("id")
    p.add_argument("path")
    p.add_argument("-a", "--app", help="app of a vN reference")
    p.set_defaults(func=cmd_slugs_cat)

    p = sub.add_parser("slugs:diff", help="files changed between two slugs (admins)")
    p.add_argument("old", help="slug id or vN")
    p.add_argument("new", help="slug id or vN")
    p.add_argument("-a", "--app", help="app of vN references")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_slugs_diff)

    p = sub.add_parser("slugs:download", help="download a slug's tarball (admins)")
    p.add_argument("id")
    p.add_argument("-o", "--output", help="file to write (default ID.tar.gz)")
    p.add_argument("-a", "--app", help="app of a vN reference")
    p.set_defaults(func=cmd_slugs_download)

    p = sub.add_parser("slugs:verify", help="recompute slug checksums (admins)")
    p.add_argument("id", nargs="?")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_slugs_verify)

    p = sub.add_parser("slugs:prune", help="delete slugs no recent release uses (admins)")
    p.add_argument("--keep", type=int, default=DEFAULT_KEEP,
                   help=f"keep the slugs of each app's last N releases (default {DEFAULT_KEEP})")
    p.add_argument("--dry-run", action="store_true", help="only show what would go (default)")
    p.add_argument("--force", "--yes", action="store_true", help="really delete")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_slugs_prune)
