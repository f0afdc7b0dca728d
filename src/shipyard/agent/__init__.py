"""The agent's working aids: prompts, repository instructions and map, context management,
model routing and its economics."""
