import os
import platform
from importlib.metadata import version

import bottle


@bottle.get("/")
def index() -> str:
    return f"poetry project: bottle {version('bottle')} on Python {platform.python_version()}\n"


bottle.run(host="0.0.0.0", port=int(os.environ["PORT"]), quiet=True)
