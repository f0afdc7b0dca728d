"""How a command is decided: the order of the rules, the exec-form check that comes before
the allow and ask rules, commands run by a wrapper, and approvals remembered for the run.

The syntax is documented in ``policy``'s module docstring; the forms the check refuses are
in :mod:`shipyard.policy.exec_forms`. Kept apart so ``Policy.check_command`` reads in a few lines.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from shipyard.policy.exec_forms import refusal, unwrap
from shipyard.policy.syntax import rule_matches, rule_tokens, shell_segments

Action = Literal["allow", "ask", "deny"]
_STRICTNESS: dict[Action, int] = {"allow": 0, "ask": 1, "deny": 2}


@dataclass(frozen=True)
class Verdict:
    """What to do with a command, the rule that decided it, and why (a sentence)."""

    action: Action
    rule: str
    reason: str


@dataclass(frozen=True)
class RuleSet:
    """The rules of one policy: the project's and the built-in ones as ``(action, rule)``
    pairs in the order they are tried, and the action when none matches."""

    project: Sequence[tuple[Action, str]]
    builtin: Sequence[tuple[Action, str]]
    default: Literal["ask", "deny"]


def decide(argv: Sequence[str], rules: RuleSet, remembered: Sequence[str] = ()) -> Verdict:
    """Decide a parsed, non-empty command.

    Order: the project's ``deny``; the exec-form check (``exec_forms.refusal``), so no
    ``allow`` lets such a form through; the project's ``ask``, ``allow``; the built-in
    ``deny``, ``ask``, ``allow``; ``default``. A wrapper (``env``, ``timeout`` ...) gets the
    stricter of its own decision and that of the command it runs, decided the same way.
    ``remembered`` patterns then turn an ``ask`` into ``allow``, never a ``deny``. Raises
    ``PolicyError`` for an unparsable remembered pattern.
    """
    verdict = _decide(argv, rules)
    if verdict.action != "ask":
        return verdict
    for pattern in remembered:
        if rule_matches(rule_tokens(pattern), argv, loose_program=False):
            return Verdict("allow", pattern, f"approved earlier in this run as {pattern!r}")
    return verdict


def shell_refusal(text: str) -> Verdict | None:
    """A deny for a command line a ``[commands].shell`` rule allowed when one of its simple
    commands (or a command a wrapper there runs) has a refused exec form, else None."""
    for segment in shell_segments(text):
        try:
            argv = shlex.split(segment)
        except ValueError as err:
            return Verdict("deny", "default", f"cannot parse {segment.strip()!r}: {err}")
        while argv:
            if (refused := refusal(argv)) is not None:
                return _refused(refused.rule, refused.text)
            start = unwrap(argv)
            argv = argv[start:] if start is not None else []
    return None


def _decide(argv: Sequence[str], rules: RuleSet) -> Verdict:
    own = _own(argv, rules)
    start = unwrap(argv)
    if own.action == "deny" or start is None or start >= len(argv):
        return own
    inner = _decide(argv[start:], rules)
    if _STRICTNESS[own.action] > _STRICTNESS[inner.action]:
        return own
    wrapper = shlex.join(argv[:start])
    reason = f"{wrapper} runs {shlex.join(argv[start:])}, which is {inner.action}: {inner.reason}"
    if own.action == "allow":
        reason += f"; {wrapper} itself: {own.reason}"
    return Verdict(inner.action, inner.rule, reason)


def _own(argv: Sequence[str], rules: RuleSet) -> Verdict:
    for action, rule in rules.project:
        if action == "deny" and rule_matches(rule_tokens(rule), argv, loose_program=True):
            return _by_rule("project", action, rule)
    if (refused := refusal(argv)) is not None:
        return _refused(refused.rule, refused.text)
    for origin, listed in (("project", rules.project), ("built-in", rules.builtin)):
        for action, rule in listed:
            if rule_matches(rule_tokens(rule), argv, loose_program=action == "deny"):
                return _by_rule(origin, action, rule)
    reason = f"no rule matches; [commands].default is {rules.default!r}"
    return Verdict(rules.default, "default", reason)


def _by_rule(origin: str, action: Action, rule: str) -> Verdict:
    return Verdict(action, rule, f"{action} by {origin} rule {rule!r} in [commands].{action}")


def _refused(rule: str, text: str) -> Verdict:
    reason = f'{text}; refused whatever the allow rules say (built-in rule "{rule}")'
    return Verdict("deny", rule, reason)
