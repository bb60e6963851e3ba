"""The pages the server answers besides the app's own (tui/templates/app_index.html): the classroom is full, the
join code.
"""

from __future__ import annotations

from pathlib import Path

TEMPLATES = Path(__file__).parent.parent / "templates"
CODE_COOKIE = "rnn-tui-code"  # the join code, kept by the browser that typed it
FULL_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="30"><title>rnn-tui: the classroom is full</title>
<style>body{{background:#0c181f;color:#eee;font-family:monospace;display:flex;height:90vh;align-items:center;
justify-content:center}}div{{max-width:36em;line-height:1.5}}a{{color:#ac5af4}}</style></head>
<body><div><h2>The classroom is full</h2>
<p>All {limit} sessions of this rnn-tui server are in use. A place frees up when someone closes their tab{when}.</p>
<p>This page tries again by itself every 30 seconds. <a href="">Try now</a></p></div>
<script>/* a reload of a tab that has a session here takes that session's place: say which tab this is */
const tab = sessionStorage.getItem("rnn-tui-tab");
if (tab && !new URLSearchParams(location.search).has("tab")) {{
  const url = new URL(location.href); url.searchParams.set("tab", tab); location.replace(url.href);
}}</script></body></html>
"""
CODE_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>rnn-tui: join code</title>
<style>body{{background:#0c181f;color:#eee;font-family:monospace;display:flex;height:90vh;align-items:center;
justify-content:center}}input,button{{font:inherit;padding:6px}}</style></head>
<body><form method="get" action=""><h2>rnn-tui</h2><p>{why}</p>
<input name="code" autofocus autocomplete="off"> <button>Join</button></form></body></html>
"""
