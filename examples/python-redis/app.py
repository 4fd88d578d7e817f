"""Enqueues work in Redis (REDIS_URL, set by the redis add-on); a worker dyno does it.

GET /              counts hits in Redis: "hits: N (release vN)"
GET /jobs?text=T   enqueues tasks.shout(T), answers the job id
GET /jobs/ID       "queued", "started" or "finished: RESULT"
"""

import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job

import tasks


def connection() -> redis.Redis:
    return redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=5)


def answer(path: str) -> tuple[int, str]:
    release = os.environ.get("SHIPWAY_RELEASE", "unknown")
    if not os.environ.get("REDIS_URL"):
        return 200, f"no redis attached (release {release})\n"
    url = urlsplit(path)
    conn = connection()
    if url.path == "/":
        return 200, f"hits: {conn.incr('hits')} (release {release})\n"
    if url.path == "/jobs":
        text = parse_qs(url.query).get("text", ["hello"])[0]
        job = Queue(connection=conn).enqueue(tasks.shout, text)
        return 202, f"{job.id}\n"
    if url.path.startswith("/jobs/"):
        try:
            job = Job.fetch(url.path.removeprefix("/jobs/"), connection=conn)
        except NoSuchJobError:
            return 404, "no such job\n"
        status = job.get_status()
        if status == "finished":
            return 200, f"finished: {job.return_value()}\n"
        return 200, f"{status}\n"
    return 404, "not found\n"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        try:
            status, text = answer(self.path)
        except redis.RedisError as exc:
            status, text = 503, f"redis error: {exc}\n"
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
