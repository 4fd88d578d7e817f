import platform
from importlib.metadata import version

import flask

app = flask.Flask(__name__)


@app.get("/")
def index() -> str:
    return f"uv project: flask {version('flask')} on Python {platform.python_version()}\n"
