"""The API's ``/api/apps/{app}/pg/...`` handlers: the same service functions as ``shipway pg:*``.

Every handler first authorizes the user for the app (its owner or a collaborator); the
documents are those ``shipway.commands.pg`` prints from.
"""

from __future__ import annotations

from shipway.addons import pgbackups
from shipway.addons.pgdatabase import database_info, database_of, reset_database, run_psql
from shipway.api import Api, Request, Response
from shipway.commands.pg import backup_doc, schedule_doc


def _database(req: Request) -> str | None:
    return req.query.get("database") or None


def pg_info(api: Api, req: Request) -> Response:
    app = api._app(req)
    db = database_of(api.layout, app.name, _database(req))
    return Response(body={"config_var": db.config_var, "info": database_info(db)})


def pg_psql(api: Api, req: Request) -> Response:
    app = api._app(req)
    db = database_of(api.layout, app.name, _database(req))
    status, output = run_psql(db, command=req.body.get("command"), script=req.body.get("script"))
    return Response(body={"output": output, "status": status})


def pg_reset(api: Api, req: Request) -> Response:
    app = api._app(req)
    db = reset_database(api.layout, api.settings, app=app.name, name=_database(req),
                        confirm=req.body.get("confirm"), user=req.who.email)
    return Response(body={"addon": db.addon.name, "config_var": db.config_var})


def pg_backups(api: Api, req: Request) -> Response:
    app = api._app(req)
    return Response(body=[backup_doc(b) for b in pgbackups.list_backups(api.layout, app.name)])


def pg_capture(api: Api, req: Request) -> Response:
    app = api._app(req)
    backup = pgbackups.capture(api.layout, app=app.name, name=_database(req),
                               user=req.who.email)
    return Response(201, backup_doc(backup))


def pg_backup(api: Api, req: Request) -> Response:
    app = api._app(req)
    return Response(body=backup_doc(pgbackups.find_backup(api.layout, app.name,
                                                          req.params["backup"])))


def pg_download(api: Api, req: Request) -> Response:
    app = api._app(req)
    backup = pgbackups.find_backup(api.layout, app.name, req.params["backup"])
    return Response(stream=pgbackups.read_dump(api.layout, app.name, backup),
                    content_type="application/octet-stream",
                    headers=[("Content-Length", str(backup.size)),
                             ("Content-Disposition", f'attachment; filename="{backup.id}.dump"'),
                             ("Shipway-Checksum", f"sha256:{backup.sha256}")])


def pg_restore(api: Api, req: Request) -> Response:
    app = api._app(req)
    backup, db = pgbackups.restore(api.layout, app=app.name, ref=req.params["backup"],
                                   name=_database(req), confirm=req.body.get("confirm"),
                                   user=req.who.email)
    return Response(body={"backup": backup_doc(backup), "config_var": db.config_var})


def pg_delete(api: Api, req: Request) -> Response:
    app = api._app(req)
    backup = pgbackups.delete(api.layout, app=app.name, ref=req.params["backup"],
                              confirm=req.query.get("confirm"))
    return Response(body=backup_doc(backup))


def pg_schedules(api: Api, req: Request) -> Response:
    app = api._app(req)
    found = pgbackups.get_schedule(api.layout, app.name)
    return Response(body=[schedule_doc(found)] if found else [])


def pg_schedule(api: Api, req: Request) -> Response:
    app = api._app(req)
    schedule = pgbackups.set_schedule(
        api.layout, app=app.name, name=_database(req), at=req.body["at"],
        keep=int(req.body.get("keep", pgbackups.DEFAULT_KEEP)), user=req.who.email)
    return Response(body=schedule_doc(schedule))


def pg_unschedule(api: Api, req: Request) -> Response:
    app = api._app(req)
    return Response(body=schedule_doc(pgbackups.remove_schedule(api.layout, app=app.name)))
