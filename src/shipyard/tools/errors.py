"""The one error the developer model sees: a problem it can fix by calling a tool differently.

A ``ToolError`` never escapes a node. The tool wrapper catches it and returns ``str(err)``
to the model verbatim as the tool result, so the message must say what went wrong and,
where it can, what to do instead. It must never carry secrets or content from outside the
workspace. Anything else a tool raises is a bug or broken infrastructure and propagates.
"""

from __future__ import annotations


class ToolError(Exception):
    """A refusal or failure the model can act on; ``str(err)`` is shown to it unchanged."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
