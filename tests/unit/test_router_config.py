"""The router's pure parts: nginx configuration for an app, router log lines, log merging,
host names and router settings."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from release.logplex import check_source, router_line, sort_key
from shipway import domains, nginx
from shipway.apps import create_app
from shipway.errors import InvalidName, SettingsError, UsageError
from shipway.layout import Layout
from shipway.settings import load_settings

LISTEN = nginx.Listen("127.0.0.1", 8080, 8443, "apps.test", 5_000_000)


def test_an_apps_conf_names_its_hosts_dynos_and_limits(layout: Layout) -> None:
    create_app(layout, "shop", "dev@example.com")
    domains.write_domains(layout, "shop", ("www.shop.example",))
    text = nginx.render_app(layout, LISTEN, "shop", ("127.0.0.1:4001", "127.0.0.1:4002"),
                            ("web.1", "web.2"))
    assert "server_name shop.apps.test www.shop.example;" in text
    assert "    server 127.0.0.1:4001 max_fails=0;\n    server 127.0.0.1:4002 max_fails=0;" in text
    assert '"~(^|, )127\\.0\\.0\\.1:4002$" "web.2";' in text
    assert "keepalive 32;" in text
    assert "Request body too large: shop accepts at most 5 MB." in text
    assert "ssl_certificate" not in text  # no certificate, no HTTPS server for it


def test_an_app_without_dynos_answers_503_and_has_no_upstream(layout: Layout) -> None:
    create_app(layout, "shop", "dev@example.com")
    text = nginx.render_app(layout, LISTEN, "shop", (), ())
    assert "upstream shipway_" not in text and "proxy_pass" not in text
    assert "return 503 '<!DOCTYPE html>" in text and "<strong>shop</strong>" in text


def test_the_main_conf_stays_inside_the_data_home(layout: Layout) -> None:
    text = nginx.render_main(layout, LISTEN, workers="auto", user="nobody")
    paths = [word.rstrip(";") for word in text.split() if word.startswith("/") and word != "/"]
    assert paths and all(p.startswith(str(layout.home)) for p in paths)
    assert "listen 127.0.0.1:8080 default_server;" in text
    assert "listen 127.0.0.1:8443 ssl default_server;" in text
    assert "client_max_body_size 5000000;" in text


def test_nginx_accepts_the_configuration_it_is_given(layout: Layout) -> None:
    create_app(layout, "shop", "dev@example.com")
    domains.write_domains(layout, "shop", ("*.shop.example",))
    folder = nginx.nginx_dir(layout)
    (folder / "apps").mkdir(parents=True, exist_ok=True)
    (folder / "temp").mkdir()
    (layout.logs_dir / "router").mkdir()
    (folder / "nginx.conf").write_text(nginx.render_main(layout, LISTEN, workers="1",
                                                          user="root"))
    (folder / "apps" / "shop.conf").write_text(
        nginx.render_app(layout, LISTEN, "shop", ("127.0.0.1:4001",), ("web.1",)))
    done = subprocess.run(["nginx", "-t", "-p", str(folder), "-c", str(folder / "nginx.conf"),
                           "-e", str(layout.logs_dir / "t.log")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_data_home_nginx_cannot_take_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="holds characters nginx cannot take"):
        nginx.safe_path(tmp_path / "my $home")


def entry(**changes: str) -> str:
    base = {"time": "1767261600.250", "method": "GET", "path": "/a?b=1", "host": "shop.apps.test",
            "request_id": "abc", "fwd": "203.0.113.9, 127.0.0.1", "dyno": "web.2",
            "connect": "0.001", "service": "0.012", "status": "200", "bytes": "345",
            "protocol": "http", "upstream_status": "200"}
    return json.dumps({**base, **changes})


def test_router_lines_read_like_herokus() -> None:
    assert router_line(entry()) == (
        '2026-01-01T10:00:00.250000+00:00 router: at=info method=GET path="/a?b=1" '
        'host=shop.apps.test request_id=abc fwd="203.0.113.9, 127.0.0.1" dyno=web.2 '
        "connect=1ms service=12ms status=200 bytes=345 protocol=http")
    # a retry on another dyno: the times of the last try
    assert "connect=2ms service=30ms" in str(router_line(entry(connect="0.000, 0.002",
                                                                service="0.001, 0.030")))
    no_dyno = router_line(entry(status="503", dyno="", connect="", service="",
                                upstream_status=""))
    assert 'at=error code=H14 desc="No web processes running"' in str(no_dyno)
    assert "dyno= connect= service= status=503" in str(no_dyno)
    assert router_line("not json") is None


def test_log_lines_merge_by_time_whatever_the_stamp_format() -> None:
    lines = ["2026-01-01T10:00:00.5Z app[web.1]: half",
             "2026-01-01T10:00:00.250000+00:00 router: quarter",
             "2026-01-01T10:00:00.123456789Z app[web.1]: early",
             "2026-01-01T09:59:59.999999+00:00 shipway[web.1]: before"]
    assert [line.split(": ")[1] for line in sorted(lines, key=sort_key)] == [
        "before", "early", "quarter", "half"]


def test_log_sources_are_checked() -> None:
    assert check_source("router") == "router" and check_source("") is None
    with pytest.raises(UsageError, match="Unknown log source 'heroku': use app, router, shipway"):
        check_source("heroku")


def test_host_names_are_lowercased_and_checked() -> None:
    assert domains.check_hostname("WWW.Example.COM.") == "www.example.com"
    assert domains.check_hostname("*.example.com") == "*.example.com"
    for bad in ("localhost", "a..b", "-a.com", "a b.com", "a.com;evil", "é.com", "x" * 300):
        with pytest.raises(InvalidName):
            domains.check_hostname(bad)


def test_router_settings_from_shipway_toml(tmp_path: Path) -> None:
    path = tmp_path / "shipway.toml"
    path.write_text("[router]\nport = 80\nhttps_port = 443\nmax_body_size = 1000\n")
    settings = load_settings(path)
    assert (settings.router_port, settings.router_https_port,
            settings.router_max_body_size) == (80, 443, 1000)
    path.write_text("[router]\nhttps_port = 70000\n")
    with pytest.raises(SettingsError, match="'router.https_port' must be a TCP port"):
        load_settings(path)


def test_a_destroyed_app_leaves_no_router_file_or_log_lines(layout: Layout) -> None:
    from shipway.apps import destroy_app

    create_app(layout, "shop", "dev@example.com")
    listen = nginx.Listen("127.0.0.1", 1, 2, "apps.test", 1000)
    nginx.write_listen(layout, listen)  # as a running router would (no master: no reload)
    nginx.sync_app(layout, "shop", (), ())
    assert nginx.app_conf(layout, "shop").exists()
    nginx.router_log(layout, "shop").parent.mkdir(parents=True)
    nginx.router_log(layout, "shop").write_text(entry() + "\n")
    destroy_app(layout, "shop")
    assert not nginx.app_conf(layout, "shop").exists()
    assert not nginx.router_log(layout, "shop").exists()
