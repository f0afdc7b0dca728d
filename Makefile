# Convenience wrappers around ./dev (which needs only bash, Python >= 3.11 and git).
.PHONY: demo test lint typecheck bench setup
demo test lint typecheck bench setup:
	./dev $@
