"""The API's resources: records to JSON and back, their schemas, and the OpenAPI document.

Field names follow Heroku's Platform API. The schemas are a small JSON Schema subset
(type, properties, required, items, additionalProperties, enum) that ``check`` validates: the
API checks request bodies with it and the tests check real responses with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from builder.slug import Slug
from release.launch import Dyno
from release.records import Release
from shipway.accounts import App, User
from shipway.settings import Settings
from shipway.slugtools import PrunePlan, ReleaseRef, SlugDiff, SlugEntry, SlugUse, VerifyResult

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class AppInfo:
    """An app as ``apps:info`` shows it (built from ``apps/NAME/app.toml`` and its releases)."""

    name: str
    owner: str
    created_at: str
    web_url: str
    git_url: str
    collaborators: tuple[str, ...] = ()
    buildpack: str = ""
    stack: str = ""
    current_release: int | None = None
    released_at: str | None = None
    maintenance: bool = False


# records -> JSON ---------------------------------------------------------------------------
def account_json(user: User) -> Json:
    return {"id": user.email, "email": user.email, "admin": user.admin}


def app_info(app: App, settings: Settings, server_url: str, current: Release | None,
             maintenance: bool = False) -> AppInfo:
    return AppInfo(
        name=app.name, owner=app.owner, created_at=app.created_at,
        web_url=f"http://{app.name}.{settings.router_domain}:{settings.router_port}/",
        git_url=f"{server_url.rstrip('/')}/{app.name}.git",
        collaborators=app.collaborators, buildpack=app.buildpack, stack=app.stack,
        current_release=current.version if current is not None else None,
        released_at=current.updated_at if current is not None else None,
        maintenance=maintenance,
    )


def app_json(info: AppInfo) -> Json:
    return {
        "id": info.name, "name": info.name, "owner": {"email": info.owner},
        "created_at": info.created_at, "web_url": info.web_url, "git_url": info.git_url,
        "collaborators": list(info.collaborators),
        "buildpack_provided_description": info.buildpack,
        "stack": {"name": info.stack}, "current_release": info.current_release,
        "released_at": info.released_at, "maintenance": info.maintenance,
    }


def app_from(doc: Json) -> AppInfo:
    return AppInfo(
        name=doc["name"], owner=doc["owner"]["email"], created_at=doc["created_at"],
        web_url=doc["web_url"], git_url=doc["git_url"],
        collaborators=tuple(doc.get("collaborators", [])),
        buildpack=doc.get("buildpack_provided_description", ""),
        stack=(doc.get("stack") or {}).get("name", ""),
        current_release=doc.get("current_release"), released_at=doc.get("released_at"),
        maintenance=bool(doc.get("maintenance")),
    )


def release_json(release: Release, *, current: bool = False, slug_present: bool = True) -> Json:
    return {
        "id": f"{release.app}-v{release.version}", "version": release.version,
        "app": {"name": release.app}, "description": release.description,
        "status": release.status, "user": {"email": release.user},
        "created_at": release.created_at, "updated_at": release.updated_at,
        "slug": {"id": release.slug} if release.slug else None,
        "slug_pruned": bool(release.slug) and not slug_present,
        "commit": release.commit, "commit_description": release.commit_description,
        "addon_plan_names": list(release.addons), "failure": release.failure,
        "launched": release.launched, "current": current,
        "output_stream_url": (f"/api/apps/{release.app}/releases/{release.version}/output"
                              if release.output else None),
    }


def release_from(doc: Json) -> Release:
    return Release(
        app=doc["app"]["name"], version=int(doc["version"]), description=doc["description"],
        status=doc["status"], user=doc["user"]["email"], created_at=doc["created_at"],
        updated_at=doc["updated_at"], slug=(doc.get("slug") or {}).get("id", ""),
        commit=doc.get("commit", ""), commit_description=doc.get("commit_description", ""),
        addons=tuple(doc.get("addon_plan_names", [])),
        output=doc.get("output_stream_url") or "", failure=doc.get("failure", ""),
        launched=bool(doc.get("launched", False)),
    )


def slug_json(slug: Slug, use: SlugUse | None = None) -> Json:
    doc: Json = {
        "id": slug.id, "checksum": slug.checksum, "size": slug.size, "commit": slug.commit,
        "created_at": slug.created_at, "stack": {"name": slug.stack},
        "buildpack_provided_description": slug.buildpack,
        "process_types": dict(slug.process_types), "build_duration": slug.build_duration,
        "app": {"name": slug.app}, "runtime": slug.runtime,
    }
    if use is not None:
        doc["releases"] = [{"app": r.app, "version": r.version, "current": r.current}
                           for r in use.releases]
        doc["current"] = use.current
    return doc


def slug_from(doc: Json) -> Slug:
    return Slug(
        id=doc["id"], size=int(doc["size"]), app=doc["app"]["name"], commit=doc["commit"],
        created_at=doc["created_at"], stack=(doc.get("stack") or {}).get("name", ""),
        buildpack=doc.get("buildpack_provided_description", ""),
        process_types=dict(doc.get("process_types", {})),
        build_duration=float(doc.get("build_duration", 0.0)), runtime=doc.get("runtime", ""),
    )


def slug_use_from(doc: Json) -> SlugUse:
    refs = tuple(ReleaseRef(r["app"], int(r["version"]), bool(r["current"]))
                 for r in doc.get("releases", []))
    return SlugUse(slug_from(doc), refs)


def dyno_json(dyno: Dyno) -> Json:
    return {
        "id": dyno.id, "name": dyno.name, "type": dyno.process_type, "state": dyno.state,
        "release": {"version": dyno.release}, "app": {"name": dyno.app},
        "started_at": dyno.started_at, "command": dyno.command,
    }


def dyno_from(doc: Json) -> Dyno:
    return Dyno(
        id=doc["id"], app=doc["app"]["name"], release=int(doc["release"]["version"]),
        process_type=doc["type"], index=int(doc["name"].rpartition(".")[2] or 0),
        state=doc["state"], started_at=doc["started_at"], host_port=None,
        command=str(doc.get("command") or ""),
    )


def formation_json(app: str, counts: dict[str, int], commands: dict[str, str]) -> list[Json]:
    return [{"app": {"name": app}, "type": t, "quantity": q, "command": commands.get(t, "")}
            for t, q in sorted(counts.items())]


def entry_json(entry: SlugEntry) -> Json:
    return {"path": entry.path, "type": entry.kind, "mode": entry.mode, "size": entry.size,
            "target": entry.target, "sha256": entry.digest}


def entry_from(doc: Json) -> SlugEntry:
    return SlugEntry(path=doc["path"], kind=doc["type"], mode=int(doc["mode"]),
                     size=int(doc["size"]), digest=doc.get("sha256", ""),
                     target=doc.get("target", ""))


def diff_json(found: SlugDiff) -> Json:
    return {
        "old": found.old, "new": found.new,
        "added": [entry_json(e) for e in found.added],
        "removed": [entry_json(e) for e in found.removed],
        "changed": [{"old": entry_json(a), "new": entry_json(b)} for a, b in found.changed],
    }


def diff_from(doc: Json) -> SlugDiff:
    return SlugDiff(
        doc["old"], doc["new"], tuple(entry_from(e) for e in doc["added"]),
        tuple(entry_from(e) for e in doc["removed"]),
        tuple((entry_from(c["old"]), entry_from(c["new"])) for c in doc["changed"]),
    )


def verify_json(result: VerifyResult) -> Json:
    return {"id": result.slug_id, "ok": result.ok, "message": result.message}


def verify_from(doc: Json) -> VerifyResult:
    return VerifyResult(doc["id"], bool(doc["ok"]), doc["message"])


def prune_json(plan: PrunePlan) -> Json:
    return {"dry_run": plan.dry_run, "keep": list(plan.keep),
            "removed": [slug_json(s) for s in plan.remove], "freed": plan.freed}


def prune_from(doc: Json) -> PrunePlan:
    return PrunePlan(tuple(doc["keep"]), tuple(slug_from(s) for s in doc["removed"]),
                     bool(doc["dry_run"]))


# schemas -------------------------------------------------------------------------------------
STRING: Json = {"type": "string"}
INTEGER: Json = {"type": "integer"}
BOOLEAN: Json = {"type": "boolean"}


def _object(required: dict[str, Json], optional: dict[str, Json] | None = None,
            closed: bool = False) -> Json:
    schema: Json = {"type": "object", "properties": {**required, **(optional or {})},
                    "required": sorted(required)}
    if closed:
        schema["additionalProperties"] = False
    return schema


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _named(key: str) -> Json:
    return _object({key: STRING})


ENTRY = _object({"path": STRING, "type": {"type": "string", "enum": ["file", "dir", "symlink"]},
                 "mode": INTEGER, "size": INTEGER, "target": STRING, "sha256": STRING})
SLUG = _object(
    {"id": STRING, "checksum": STRING, "size": INTEGER, "commit": STRING,
     "created_at": STRING, "stack": _named("name"),
     "buildpack_provided_description": STRING,
     "process_types": {"type": "object", "additionalProperties": STRING},
     "build_duration": {"type": "number"}, "app": _named("name")},
    {"releases": {"type": "array", "items": _object(
        {"app": STRING, "version": INTEGER, "current": BOOLEAN})},
     "current": BOOLEAN},
)

SCHEMAS: dict[str, Json] = {
    "error": _object({"id": STRING, "message": STRING}),
    "account": _object({"id": STRING, "email": STRING, "admin": BOOLEAN}),
    "app": _object({
        "id": STRING, "name": STRING, "owner": _named("email"), "created_at": STRING,
        "web_url": STRING, "git_url": STRING,
        "collaborators": {"type": "array", "items": STRING},
        "buildpack_provided_description": STRING, "stack": _named("name"),
        "current_release": {"type": ["integer", "null"]},
        "released_at": {"type": ["string", "null"]}, "maintenance": BOOLEAN,
    }),
    "app-update": _object({"maintenance": BOOLEAN}, closed=True),
    "app-create": _object({}, {"name": {"type": ["string", "null"]}}, closed=True),
    "release": _object({
        "id": STRING, "version": INTEGER, "app": _named("name"), "description": STRING,
        "status": {"type": "string", "enum": ["pending", "succeeded", "failed"]},
        "user": _named("email"), "created_at": STRING, "updated_at": STRING,
        "slug": {"type": ["object", "null"], "properties": {"id": STRING}},
        "slug_pruned": BOOLEAN, "commit": STRING, "commit_description": STRING,
        "addon_plan_names": {"type": "array", "items": STRING}, "failure": STRING,
        "launched": BOOLEAN, "current": BOOLEAN,
        "output_stream_url": {"type": ["string", "null"]},
    }),
    "rollback": _object({"release": {"type": ["integer", "string", "null"]}}, closed=True),
    "config-vars": {"type": "object", "additionalProperties": STRING},
    "config-vars-update": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
    "formation": _object({"app": _named("name"), "type": STRING, "quantity": INTEGER,
                          "command": STRING}),
    "formation-update": _object({"updates": {"type": "array", "items": _object(
        {"type": STRING, "quantity": INTEGER}, closed=True)}}, closed=True),
    "dyno": _object({"id": STRING, "name": STRING, "type": STRING, "state": STRING,
                     "release": _object({"version": INTEGER}), "app": _named("name"),
                     "started_at": STRING},
                    {"command": STRING, "attach_url": {"type": ["string", "null"]}}),
    # Heroku's dyno create: attach=true answers an attach_url (shipway/rendezvous.py)
    "dyno-create": _object({"command": STRING}, {
        "attach": BOOLEAN, "force_no_tty": {"type": ["boolean", "null"]},
        "env": {"type": "object", "additionalProperties": STRING},
        "type": STRING, "size": STRING, "time_to_live": INTEGER}, closed=True),
    "dyno-exec-request": _object({}, {"command": {"type": ["string", "null"]},
                                      "force_no_tty": {"type": ["boolean", "null"]}},
                                  closed=True),
    "dyno-exec": _object({"dyno": STRING, "attach_url": STRING}),
    "build-cache-purge": _object({"freed": INTEGER}),
    "dyno-stop": _object({"stopped": {"type": "array", "items": STRING}}),
    "slug": SLUG,
    "slug-entry": ENTRY,
    "slug-diff": _object({"old": STRING, "new": STRING,
                          "added": {"type": "array", "items": ENTRY},
                          "removed": {"type": "array", "items": ENTRY},
                          "changed": {"type": "array", "items": _object(
                              {"old": ENTRY, "new": ENTRY})}}),
    "slug-verify-request": _object({}, {"id": {"type": ["string", "null"]}}, closed=True),
    "slug-verification": _object({"id": STRING, "ok": BOOLEAN, "message": STRING}),
    "slug-prune-request": _object({}, {"keep": INTEGER, "dry_run": BOOLEAN}, closed=True),
    "slug-prune": _object({"dry_run": BOOLEAN, "keep": {"type": "array", "items": STRING},
                           "removed": {"type": "array", "items": SLUG}, "freed": INTEGER}),
    "empty": _object({}, closed=True),
    "addon": _object({
        "name": STRING, "provider": STRING, "plan": STRING, "attachment": STRING,
        "config_vars": {"type": "array", "items": STRING}, "created_at": STRING,
        "created_by": STRING,
    }, {"info": {"type": "object", "additionalProperties": STRING}}),
    "addon-create": _object({"plan": STRING}, {"attachment": {"type": ["string", "null"]}},
                            closed=True),
    "addon-change": _object({"addon": _ref("addon"), "release": _ref("release")}),
    # pg: shipway/api_pg.py
    "pg-info": _object({"config_var": STRING,
                        "info": {"type": "object", "additionalProperties": STRING}}),
    "pg-psql-request": _object({}, {"command": {"type": ["string", "null"]}, "script": STRING},
                               closed=True),
    "pg-psql": _object({"output": STRING, "status": INTEGER}),
    "confirm": _object({"confirm": STRING}, closed=True),
    "pg-reset": _object({"addon": STRING, "config_var": STRING}),
    "pg-backup": _object({"id": STRING, "database": STRING, "addon": STRING, "size": INTEGER,
                          "sha256": STRING, "started_at": STRING, "finished_at": STRING,
                          "kind": {"type": "string", "enum": ["manual", "scheduled"]},
                          "created_by": STRING}),
    "pg-restore": _object({"backup": _ref("pg-backup"), "config_var": STRING}),
    "pg-backup-schedule": _object({"database": STRING, "at": STRING, "timezone": STRING,
                                   "keep": INTEGER, "created_at": STRING, "created_by": STRING}),
    "pg-backup-schedule-request": _object({"at": STRING}, {"keep": INTEGER}, closed=True),
    "domain": _object({"hostname": STRING,
                       "kind": {"type": "string", "enum": ["default", "custom"]},
                       "app": _named("name")}),
    "domain-create": _object({"hostname": STRING}, closed=True),
    "sni-endpoint": _object({"app": _named("name"), "subject": STRING,
                             "hosts": {"type": "array", "items": STRING}, "expires_at": STRING,
                             "fingerprint": STRING}),
    "sni-endpoint-create": _object({"certificate_chain": STRING, "private_key": STRING},
                                   closed=True),
}
# a rollback answers its release plus the lines the CLI prints (footer, add-on warnings)
SCHEMAS["rollback-done"] = _object(
    {**SCHEMAS["release"]["properties"], "output_lines": {"type": "array", "items": STRING}})


@dataclass(frozen=True, slots=True)
class Operation:
    """One documented route: what it takes and what it answers."""

    method: str
    path: str
    summary: str
    response: str  # a schema name, "[name]" for a list of them, or a media type
    request: str = ""
    auth: bool = True


TEXT = "text/plain"
GZIP = "application/gzip"

OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/api/openapi.json", "This document.", "application/json", auth=False),
    Operation("GET", "/api/account", "The authenticated user (whoami).", "account"),
    Operation("GET", "/api/apps", "Apps the user may access.", "[app]"),
    Operation("POST", "/api/apps", "Create an app (a name is generated when none is given).",
              "app", "app-create"),
    Operation("GET", "/api/apps/{app}", "One app.", "app"),
    Operation("DELETE", "/api/apps/{app}", "Destroy an app.", "app"),
    Operation("PATCH", "/api/apps/{app}",
              "maintenance=true: the router answers every request with a 503 maintenance page "
              "while the dynos keep running; false ends it.", "app", "app-update"),
    Operation("GET", "/api/apps/{app}/releases",
              "Releases, oldest first; ?limit=N or Range: version a..b; max=N, order=desc.",
              "[release]"),
    Operation("POST", "/api/apps/{app}/releases",
              "Roll back to release N (null: the one before the current); output_lines are "
              "what the CLI prints: launch output, footer and add-on warnings.",
              "rollback-done", "rollback"),
    Operation("POST", "/api/apps/{app}/releases/retry",
              "releases:retry: the latest release's release phase again, as a new release; "
              "output_lines as for a rollback.", "rollback-done", "empty"),
    Operation("DELETE", "/api/apps/{app}/build-cache",
              "builds:cache:purge: empty the build cache; the next build starts cold.",
              "build-cache-purge"),
    Operation("GET", "/api/apps/{app}/releases/{version}", "One release (N or vN).", "release"),
    Operation("GET", "/api/apps/{app}/releases/{version}/output",
              "Build and launch output, streamed while the release is pending.", TEXT),
    Operation("GET", "/api/apps/{app}/config-vars", "Config vars.", "config-vars"),
    Operation("PATCH", "/api/apps/{app}/config-vars",
              "Set config vars (null unsets): a new release.", "config-vars",
              "config-vars-update"),
    Operation("GET", "/api/apps/{app}/formation", "Process counts.", "[formation]"),
    Operation("PATCH", "/api/apps/{app}/formation", "Scale process types.", "[formation]",
              "formation-update"),
    Operation("GET", "/api/apps/{app}/slugs/{slug}", "A slug one of the app's releases uses.",
              "slug"),
    Operation("POST", "/api/apps/{app}/restart", "Restart every dyno.", "release", "empty"),
    Operation("GET", "/api/apps/{app}/dynos", "Dynos (ps).", "[dyno]"),
    Operation("POST", "/api/apps/{app}/dynos",
              "A one-off dyno of the current release (run). attach=true: created stopped and "
              "answered with attach_url rendezvous://HOST:PORT/SECRET; connect over TCP, send "
              "SECRET and a newline (good once, for 60 s), read ok, then exchange frames "
              "kind(1 byte) length(4 bytes, big endian) payload: you send i=stdin, c=stdin "
              "closed, r='ROWS COLS'; you get o=stdout, e=stderr, x=exit status (last). A "
              "TTY unless force_no_tty. attach=false (run:detached): started, output in the "
              "log as app[run.N].", "dyno", "dyno-create"),
    Operation("DELETE", "/api/apps/{app}/dynos/{dyno}",
              "Restart one dyno (web.1) or every dyno of a type (web), as ps:restart.",
              "release"),
    Operation("POST", "/api/apps/{app}/dynos/{dyno}/actions/stop",
              "ps:stop: a one-off dyno (run.N) ends; formation dynos (web.1, web) are stopped "
              "and started again by the formation.", "dyno-stop", "empty"),
    Operation("POST", "/api/apps/{app}/dynos/{dyno}/actions/exec",
              "ps:exec: a command (default bash) inside a running dyno, attached through the "
              "rendezvous exactly as a dyno created with attach=true.", "dyno-exec",
              "dyno-exec-request"),
    Operation("GET", "/api/apps/{app}/log",
              "App, router and dyno-state log lines, ?tail=N&follow=1&source=app|router|shipway"
              "&dyno=web.1|web|run.N, streamed.", TEXT),
    Operation("GET", "/api/apps/{app}/addons", "Attached add-ons.", "[addon]"),
    Operation("POST", "/api/apps/{app}/addons",
              "Provision an add-on (plan PROVIDER[:PLAN]): a new release.", "addon-change",
              "addon-create"),
    Operation("GET", "/api/apps/{app}/addons/{addon}", "One add-on with provider facts.",
              "addon"),
    Operation("DELETE", "/api/apps/{app}/addons/{addon}",
              "Deprovision an add-on (?confirm=APP): a new release.", "addon-change"),
    Operation("GET", "/api/apps/{app}/pg", "pg:info of the app's database (?database=).",
              "pg-info"),
    Operation("POST", "/api/apps/{app}/pg/psql",
              "pg:psql: run a command or a script with psql, answer its output.", "pg-psql",
              "pg-psql-request"),
    Operation("POST", "/api/apps/{app}/pg/reset", "pg:reset: empty the database.", "pg-reset",
              "confirm"),
    Operation("GET", "/api/apps/{app}/pg/backups", "pg:backups.", "[pg-backup]"),
    Operation("POST", "/api/apps/{app}/pg/backups", "pg:backups:capture (pg_dump).",
              "pg-backup", "empty"),
    Operation("GET", "/api/apps/{app}/pg/backups/{backup}", "One backup (bNNN or latest).",
              "pg-backup"),
    Operation("GET", "/api/apps/{app}/pg/backups/{backup}/download",
              "The dump (pg_dump custom format), streamed.", "application/octet-stream"),
    Operation("POST", "/api/apps/{app}/pg/backups/{backup}/restore",
              "pg:backups:restore into the live database.", "pg-restore", "confirm"),
    Operation("DELETE", "/api/apps/{app}/pg/backups/{backup}",
              "pg:backups:delete (?confirm=APP).", "pg-backup"),
    Operation("GET", "/api/apps/{app}/pg/backup-schedules", "The daily backup schedule.",
              "[pg-backup-schedule]"),
    Operation("PUT", "/api/apps/{app}/pg/backup-schedules",
              "pg:backups:schedule: a backup every day at HH:MM [zone].", "pg-backup-schedule",
              "pg-backup-schedule-request"),
    Operation("DELETE", "/api/apps/{app}/pg/backup-schedules", "pg:backups:unschedule.",
              "pg-backup-schedule"),
    Operation("GET", "/api/apps/{app}/domains", "The default host and custom domains.",
              "[domain]"),
    Operation("POST", "/api/apps/{app}/domains", "Route a custom domain to the app.", "domain",
              "domain-create"),
    Operation("DELETE", "/api/apps/{app}/domains/{hostname}", "Remove a custom domain.",
              "domain"),
    Operation("GET", "/api/apps/{app}/sni-endpoints", "The app's TLS certificate (0 or 1).",
              "[sni-endpoint]"),
    Operation("POST", "/api/apps/{app}/sni-endpoints",
              "Add (or replace) the app's certificate chain and private key (PEM).",
              "sni-endpoint", "sni-endpoint-create"),
    Operation("DELETE", "/api/apps/{app}/sni-endpoints", "Remove the app's certificate.",
              "sni-endpoint"),
    Operation("GET", "/api/slugs", "Every slug (admins), ?app=NAME.", "[slug]"),
    Operation("GET", "/api/slugs/diff", "Files changed between ?old= and ?new= (admins).",
              "slug-diff"),
    Operation("POST", "/api/slugs/verify", "Recompute checksums (admins).",
              "[slug-verification]", "slug-verify-request"),
    Operation("POST", "/api/slugs/prune", "Retention (admins): dry run unless dry_run=false.",
              "slug-prune", "slug-prune-request"),
    Operation("GET", "/api/slugs/{slug}", "One slug by id, prefix or vN with ?app= (admins).",
              "slug"),
    Operation("GET", "/api/slugs/{slug}/contents", "Files inside, ?path= (admins).",
              "[slug-entry]"),
    Operation("GET", "/api/slugs/{slug}/file", "One file's bytes, ?path= (admins).",
              "application/octet-stream"),
    Operation("GET", "/api/slugs/{slug}/tarball", "The gzip tarball (admins).", GZIP),
)


def _response_schema(response: str) -> tuple[str, Json]:
    if "/" in response:
        return response, {"type": "string"} if response != "application/json" else {
            "type": "object"}
    if response.startswith("["):
        return "application/json", {"type": "array", "items": _ref(response[1:-1])}
    return "application/json", _ref(response)


def document() -> Json:
    """The OpenAPI 3.1 document served at ``/api/openapi.json``."""
    paths: Json = {}
    for op in OPERATIONS:
        media, schema = _response_schema(op.response)
        params = [{"name": name.strip("{}"), "in": "path", "required": True,
                   "schema": STRING} for name in op.path.split("/") if name.startswith("{")]
        entry: Json = {
            "summary": op.summary, "parameters": params,
            "responses": {
                "200": {"description": "OK", "content": {media: {"schema": schema}}},
                "default": {"description": "Error",
                            "content": {"application/json": {"schema": _ref("error")}}},
            },
        }
        if op.request:
            entry["requestBody"] = {"content": {"application/json": {
                "schema": _ref(op.request)}}}
        if not op.auth:
            entry["security"] = []
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "Shipway Platform API", "version": "1"},
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"},
                                "bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"basic": []}, {"bearer": []}],
        "paths": paths,
    }


# validation ----------------------------------------------------------------------------------
TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "object": (dict,), "array": (list,), "null": (type(None),),
}


def _resolve(schema: Json) -> Json:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    return SCHEMAS[ref.rsplit("/", 1)[1]]


def _is(value: Any, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, TYPES[kind])


def check(value: Any, schema: Json, where: str = "body") -> list[str]:
    """Problems of ``value`` against ``schema``, each naming the field (empty = valid)."""
    schema = _resolve(schema)
    kinds = schema.get("type")
    if kinds is not None:
        wanted = [kinds] if isinstance(kinds, str) else list(kinds)
        if not any(_is(value, k) for k in wanted):
            return [f"{where} must be {' or '.join(wanted)}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where} must be one of {', '.join(map(str, schema['enum']))}"]
    problems: list[str] = []
    if isinstance(value, dict):
        props: Json = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                problems.append(f"{where}.{name} is required")
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in props:
                problems.extend(check(item, props[name], f"{where}.{name}"))
            elif extra is False:
                problems.append(f"unknown field {where}.{name}")
            elif isinstance(extra, dict):
                problems.extend(check(item, extra, f"{where}.{name}"))
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            problems.extend(check(item, schema["items"], f"{where}[{i}]"))
    return problems
