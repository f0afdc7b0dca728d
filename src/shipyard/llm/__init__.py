"""Models for the planner, developer and reviewer roles (docs/architecture.md §7).

``ModelGateway`` is the one entry point the graph's nodes use; ``ScriptedChatModel`` and
``Script`` replay recorded replies for tests and the offline demo. Module map:
``factory`` (settings → ``ChatOpenAI``), ``retry`` (what is retried, how long to wait),
``structured`` (schema as a forced tool, parsing, the repair prompt), ``pricing`` (cost),
``scripted`` (the script format), ``redaction`` (what a model hears and says), ``gateway``
(the public calls).
"""

from __future__ import annotations

from shipyard.llm.factory import MalformedReplyError, build_chat_model, endpoint_label
from shipyard.llm.gateway import UNPRICED, ModelGateway, ModelReply, StructuredReply
from shipyard.llm.pricing import PRICES, cost_usd, price_for
from shipyard.llm.scripted import Script, ScriptedChatModel, ScriptError

__all__ = [
    "PRICES",
    "UNPRICED",
    "MalformedReplyError",
    "ModelGateway",
    "ModelReply",
    "Script",
    "ScriptError",
    "ScriptedChatModel",
    "StructuredReply",
    "build_chat_model",
    "cost_usd",
    "endpoint_label",
    "price_for",
]
