"""An app's build cache (``apps/NAME/cache/``: the buildpacks' CACHE_DIR, kept as cache.tar)."""

from __future__ import annotations

import shutil

from shipway.errors import NotFound
from shipway.layout import Layout


def purge_cache(layout: Layout, app: str) -> int:
    """``builds:cache:purge``: empty the cache so the next build starts cold; bytes freed."""
    if not layout.app_file(app).exists():
        raise NotFound(f"Couldn't find that app: {app}.")
    folder = layout.cache_dir(app)
    if not folder.is_dir():
        return 0
    # never follow a link out of the folder: sizes of regular files only, then the tree goes
    freed = sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    shutil.rmtree(folder)
    return freed
