"""`rnn-tui serve`: the app in web browsers, one app process per tab (textual-serve), for a classroom.

What textual-serve does as it is, and what this module changes (textual_serve 1.1.3, read before designing):
- its page asks fonts.googleapis.com for Roboto Mono: our template (tui/templates/app_index.html) declares the
  font from textual-serve's own bundled copy instead, so the page requests nothing beyond this server;
- it starts a process for every websocket, without limit: at most --max-sessions here; a further tab gets a
  page (or, if it got that far, a line in its terminal) saying the classroom is full;
- it waits forever for an app that ignores "quit": a session's process is killed STOP_SECONDS after its tab
  closed, and its directory removed; an app process that dies closes its tab's connection (the page said
  nothing and the session stayed counted);
- its page's URLs come from the host it binds (0.0.0.0 would be sent to the browser): here, from the address
  the browser used, or --public-url.
- a send that fails (a tab that dropped a frame too large for it) raised out of its stop and the seat was
  never freed, its app training on with nobody there: every way a connection ends now frees the seat, kills
  the app's process group and removes its folder, whatever raised on the way;
- the terminal size a browser asks for is capped (MAX_COLUMNS × MAX_ROWS): an 8000×4000 terminal made frames
  of many megabytes and a session of a gigabyte; the browser's messages are capped too (MAX_MESSAGE);
- app processes could outlive the server (ctrl+c, a crash, SIGKILL): each is its own process group, killed
  with the session; the kernel kills it if the server dies (PR_SET_PDEATHSIG); and a small reaper process,
  holding a pipe from the server, kills what is left and removes the folders once that pipe closes;
- any page could open a session (no Origin check, no login): the websocket's Origin must be this server's
  page, and serving beyond this machine needs a join code;
- tracebacks with local variables on the teacher's console: one line per event instead (--log: JSON lines);
- its apps' driver (Textual's WebDriver) writes a download's chunks (its input thread) and the screen's frames (the
  app's thread) into one pipe without a lock: under load they interleaved, the packet could not be decoded, and the
  session ended with its files while the tab was still open: sessions run tui.web_driver's, each packet whole.
Each app process runs in served mode (tui.served): its own directory under --workdir as working directory,
file dialogs confined to it, the corpus fixed, training paused when nobody has touched the tab for a while.

The package, one concern a module: run (the command: checks, then the server), settings (the command line resolved),
server (ClassroomServer: pages, websockets, reloads, downloads, releases), access (who may open a session), session
(SessionService: one tab's app process), console (the teacher's lines, the throttle), cleanup (the reaper, the work
directory's lock and sweep), pages (the full and join-code pages), hooks (textual-serve's private parts, checked).
Importing the package imports none of them: `rnn-tui serve` without the serve extra says so in one line.
"""
