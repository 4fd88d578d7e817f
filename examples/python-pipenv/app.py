import os
import platform
from importlib.metadata import version

import waitress


def app(environ, start_response):  # type: ignore[no-untyped-def]
    body = f"pipenv project: waitress {version('waitress')} on Python {platform.python_version()}\n"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]


waitress.serve(app, host="0.0.0.0", port=int(os.environ["PORT"]))
