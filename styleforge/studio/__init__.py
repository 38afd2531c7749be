"""StyleForge Studio: a local web page to explore a generator (`styleforge studio --network CKPT`).

`server` is the Starlette app and `static/` the page (plain HTML, CSS and JavaScript, no build step); what it
shows comes from `styleforge.inference` (network_info, settings, render).
"""
