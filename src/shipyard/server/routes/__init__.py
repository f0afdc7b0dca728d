"""HTTP routes, one module per resource: ``meta`` (/ok, /info), ``assistants``, ``threads``
(CRUD, search, copy), ``state`` (thread state, history, update_state) and ``runs``."""
