"""Formation and route files: the small records the launcher and the router share."""

from __future__ import annotations

import pytest

from release.formation import Formation, check_counts, parse_counts, read_formation, write_formation
from release.routes import Route, read_route, route_file, write_route
from shipway.apps import create_app
from shipway.errors import UsageError
from shipway.layout import Layout

TYPES = {"web": "python3 app.py", "worker": "python3 worker.py", "release": "migrate"}


def test_defaults_are_one_web_and_nothing_else(layout: Layout) -> None:
    create_app(layout, "shop", "dev@example.com")
    formation = read_formation(layout, "shop")
    assert formation.for_types(TYPES) == {"web": 1, "worker": 0}
    write_formation(layout, Formation("shop", {"web": 3, "worker": 2}))
    assert read_formation(layout, "shop").for_types(TYPES) == {"web": 3, "worker": 2}
    assert (layout.app_dir("shop") / "formation.toml").read_text() == "web = 3\nworker = 2\n"


@pytest.mark.parametrize("pair", ["web", "web=", "=2", "web=-1", "web=two", "web=1.5"])
def test_bad_scaling_arguments(pair: str) -> None:
    with pytest.raises(UsageError, match="Invalid scaling argument"):
        parse_counts([pair])


def test_scaling_checks_types_and_quantities() -> None:
    assert parse_counts(["web=2", "worker=0"]) == {"web": 2, "worker": 0}
    with pytest.raises(UsageError, match=r"Couldn't find that process type \(clock\)."):
        check_counts({"clock": 1}, TYPES)
    with pytest.raises(UsageError, match=r"Couldn't find that process type \(release\)."):
        check_counts({"release": 1}, TYPES)
    with pytest.raises(UsageError, match="between 0 and 100"):
        check_counts({"web": 101}, TYPES)


def test_route_files_round_trip(layout: Layout) -> None:
    create_app(layout, "shop", "dev@example.com")
    write_route(layout, Route("shop", 7, ("127.0.0.1:49153", "127.0.0.1:49154")))
    path = route_file(layout, "shop")
    assert path == layout.run_dir / "routes" / "shop.toml"
    assert read_route(path, "shop") == Route("shop", 7, ("127.0.0.1:49153", "127.0.0.1:49154"))
    assert [p.name for p in path.parent.iterdir()] == ["shop.toml"]  # no temp file left
