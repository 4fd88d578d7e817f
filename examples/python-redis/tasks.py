"""Work the web process hands to the worker through Redis (rq finds it as tasks.shout)."""


def shout(text: str) -> str:
    return text.upper() + "!"
