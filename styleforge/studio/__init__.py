"""StyleForge Studio: a local web page to explore a generator (`styleforge studio --network CKPT`).

`network_info` says what a loaded generator can do, `settings` holds and checks one image's settings,
`render` turns settings into pixels (also used by `styleforge generate --settings`), `server` is the
Starlette app, and `static/` the page (plain HTML, CSS and JavaScript, no build step).
"""
