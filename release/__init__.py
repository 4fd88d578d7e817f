"""Release records, config vars, rollback and launching (the post-receive stage).

::

    store.py      ReleaseStore: apps/NAME/releases/vNNNNNNN.toml, numbered under the app lock
    deploy.py     deploy(): new release "Deploy <sha7>" for a slug, then launch
    config.py     set_config(): "Set FOO config vars" / "Remove FOO config vars", relaunch
    rollback.py   rollback(): "Rollback to vN" with vN's slug and config, launch
    launch.py     launch(): slug image, release phase, dynos, boot check, route switch
    formation.py  process counts (formation.toml); dynos.py: scale, restart, ps, logs
    routes.py     run/routes/NAME.toml, applied to the router's nginx (shipway/nginx.py)
    logplex.py    logs: dyno output, router lines, state changes (dynolog.py), merged
    reconcile.py  reconcile() at start, Supervisor thread for dynos that die

Every mutation of an app (deploy, config, rollback, scale, restart) runs under
``ReleaseStore.lock(app)``; a launch that fails records the release ``failed`` and the previous
release keeps serving.
"""
