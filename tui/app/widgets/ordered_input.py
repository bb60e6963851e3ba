"""An Input that applies keys in the order they were typed.

Textual inserts a printable key in the focused Input at once, but runs the Input's own bindings (backspace, the
arrows, home, ctrl+k…) only once the key has bubbled up to the app, through every container's message queue. In a
burst, or while training keeps the UI thread busy, a later character could land before an earlier backspace:
"ba⌫c" gave "bac" (Textual issue #6605). Here the Input runs its own bindings when the key reaches it.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Input


class OrderedInput(Input):
    async def _on_key(self, event: events.Key) -> None:
        if not event.is_printable:
            for binding in self._bindings.key_to_bindings.get(event.key, ()):
                # Priority bindings ran before the key got here; an app-wide key (F5, ctrl+s) is not the Input's.
                if not binding.priority and await self.app.run_action(binding.action, self):
                    event.stop()
                    event.prevent_default()
                    return
        await super()._on_key(event)
