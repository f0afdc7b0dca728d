"""The policy: ``.shipyard.toml``'s tables, their syntax, and how a command is decided."""
