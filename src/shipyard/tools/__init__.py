"""Workspace tools: files, git, checks, and the developer model's tool interface."""
