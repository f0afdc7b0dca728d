"""The sandbox: the launcher every command goes through, and the kernel mechanisms it stacks."""
