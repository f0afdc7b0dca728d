"""The declarative policy (docs/architecture.md §6): what may run, what may change, and how
much it may cost.

A policy is ``.shipyard.toml`` in the target repository, deep-merged with per-run overrides
(tables merge key by key; any other value, lists included, is replaced by the override).
Unknown keys are errors. Every decision is a pydantic model that is recorded verbatim.

Command rules
-------------
A rule is a command line pattern: ``program [argument patterns...]``, split like a shell
would split it (``shlex``). Each pattern matches one argument with ``fnmatch``; a final bare
``*`` matches any remaining arguments, including none. So ``"git status"`` matches exactly
``git status``, ``"git diff *"`` any ``git diff ...``, ``"pytest *"`` any ``pytest ...``::

    [commands]
    allow = ["pytest *", "python -m pytest *", "ruff check *", "git diff *"]
    ask   = ["make *"]
    deny  = ["rm -rf /*", "curl *", "git push *"]
    shell = ["pytest -q * | tail -n *"]   # whole command lines that may run through sh -c
    default = "ask"                        # for commands no rule matches: "ask" or "deny"
    builtin = true                         # also apply the built-in rules (below)

Order: the project's ``deny``; the exec-form check; the project's ``ask``, ``allow``; then
the built-in ``deny``, ``ask``, ``allow``; then ``default``. The exec-form check refuses,
whatever any ``allow`` says, forms by which a program runs another program, runs code from
an argument, loads code or configuration, or writes a file it was not asked to (``git grep
-O``, ``git -c core.pager=...``, ``git -C``, ``git diff --ext-diff``, ``rg --pre``, ``mypy
--python-executable``, ``find -exec``, ``python -c``, ``sh -c``, ``xargs``, ``npx`` and their
kin, in every spelling the program accepts); the decision names the built-in rule
``exec-option``, ``exec-program`` or ``unknown-form`` (the forms: ``exec_forms``). A wrapper
(``env``, ``nice``, ``timeout``, ...) gets the stricter of its own decision and that of the
command it runs. ``pytest`` runs the repository's code by design (``-p`` included): the
sandbox, not this list, is the boundary. For ``allow``/``ask`` the program pattern matches
``argv[0]`` exactly (``./pytest`` is not ``pytest``); ``deny`` also matches its basename
(``/usr/bin/curl`` is ``curl``). Commands run without a shell. A ``;``, ``&``, ``|``, ``<``,
``>``, backtick, ``$(``, parenthesis or newline outside quotes is denied unless a ``shell``
rule matches the whole line; in a ``shell`` rule ``*`` never matches those characters.
Quoted metacharacters are plain arguments. An ``ask`` may be turned into ``allow`` by a
pattern a human approved for the rest of the run (``remembered``); a ``deny`` never is. A
``shell`` line's simple commands meet the exec-form check too.

Paths
-----
``[paths] protected`` (a change needs approval) and ``forbidden`` (no read, no write) are
globs relative to the workspace root: ``*`` stays within a directory, ``**`` crosses them,
``dir/**`` includes ``dir`` itself, and a glob without ``/`` matches at any depth. They add
to the built-in protected set ``.git/**``, ``.github/workflows/**``, ``.shipyard.toml`` and
the files that decide how a change is tested by name: ``conftest.py`` (any depth),
``pytest.ini``, ``.pytest.ini``, ``tox.ini``, ``noxfile.py``. Files that decide it by content
(``pyproject.toml``'s ``[tool.pytest…]``, ``package.json`` scripts, plugins the test
configuration names, the scripts a check runs) are found by ``tools/testconfig.py`` at validation
and approval; either way such a change is never approved automatically.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
)

from shipyard.contracts import ISOLATION_ORDER, IsolationLevel, Usage, content_hash
from shipyard.policy.agent import AgentPolicy
from shipyard.policy.command_rules import RuleSet, decide, shell_refusal
from shipyard.policy.deliver import DeliverPolicy
from shipyard.policy.environment import Environment
from shipyard.policy.syntax import (
    glob_regex,
    normalize_path,
    policy_error_from_validation,
    read_toml,
    remember_pattern,
    shell_metachar,
    shell_rule_regex,
    valid_rule,
    valid_shell_rule,
)

POLICY_FILE = ".shipyard.toml"
Action = Literal["allow", "ask", "deny"]


Rule = Annotated[str, AfterValidator(valid_rule)]
ShellRule = Annotated[str, AfterValidator(valid_shell_rule)]

BUILTIN_RULES: dict[str, tuple[str, ...]] = {
    "deny": (
        "sudo *", "su *", "doas *", "pkexec *",
        "pip install *", "pip3 install *", "python* -m pip install *", "uv pip install *",
        "uv add *", "poetry add *", "npm install *", "npm i *", "npm ci *", "yarn add *",
        "pnpm add *", "apt *", "apt-get *", "dnf *", "yum *", "brew *",
        "curl *", "wget *", "ssh *", "scp *", "sftp *", "rsync *", "nc *", "ncat *",
        "telnet *", "ftp *", "git push *", "git fetch *", "git pull *", "git clone *",
        "git remote *", "git submodule *", "rm -rf /*", "rm -rf ~*", "mkfs*", "dd *",
        "shutdown *", "reboot *",
    ),
    "ask": (),
    "allow": (
        "git status *", "git diff *", "git log *", "git show *", "git ls-files *",
        "git rev-parse *", "git blame *", "git grep *",
        "pytest *", "python -m pytest *", "python3 -m pytest *",
        "ruff check *", "ruff format --check *", "ruff format --diff *",
        "mypy *", "python -m mypy *", "pyright *", "npm test *", "npm run test *",
        "npm run lint *", "ls *", "cat *", "head *", "tail *", "wc *", "grep *", "rg *",
        "pwd", "true", "echo *",
    ),
}  # fmt: skip
"""Rules applied after the project's own unless ``[commands] builtin = false``."""

BUILTIN_PROTECTED = (
    ".git/**", ".github/workflows/**", POLICY_FILE,
    "conftest.py", "pytest.ini", ".pytest.ini", "tox.ini", "noxfile.py",
)  # fmt: skip
"""Globs every policy protects (a glob without ``/`` matches at any depth)."""


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CommandRules(_Table):
    """``[commands]``: the project's rules, tried before the built-in ones."""

    allow: list[Rule] = Field(default_factory=list)
    ask: list[Rule] = Field(default_factory=list)
    deny: list[Rule] = Field(default_factory=list)
    shell: list[ShellRule] = Field(default_factory=list)
    default: Literal["ask", "deny"] = "ask"
    builtin: bool = True


class PathRules(_Table):
    """``[paths]``: globs added to the built-in protected set."""

    protected: list[str] = Field(default_factory=list)
    forbidden: list[str] = Field(default_factory=list)


class Budgets(_Table):
    """``[budgets]``: hard limits, checked in code (see :func:`budget_exceeded`)."""

    max_steps: int = Field(default=10, ge=1)
    attempts_per_step: int = Field(default=3, ge=1)
    tool_calls_per_step: int = Field(default=40, ge=1)
    tool_calls: int = Field(default=200, ge=1)
    model_calls: int = Field(default=120, ge=1)
    tokens: int = Field(default=2_000_000, ge=1)
    cost_usd: float = Field(default=5.0, ge=0)
    wall_s: float = Field(default=3600, gt=0)
    workspace_mb: int = Field(default=1024, ge=1)
    """The run's worktree may hold at most this many MiB (``tools.quota``)."""


class Approvals(_Table):
    """``[approvals]``: when a human must sign off."""

    plan: Literal["always", "auto-low-risk", "never"] = "always"
    changes: Literal["protected-only", "always"] = "protected-only"
    deliver: Literal["ask", "auto"] = "ask"
    """``auto``: push and open the pull request without a person's sign-off of the changes
    (``--approve auto`` never implies it); ``ask``: the changes approval always asks."""


class Review(_Table):
    """``[review]``: ask the reviewer model about a step whose checks passed. Its findings
    can only make the step fail (an error sends it back to refine); it is never asked about
    failing evidence. ``SHIPYARD_REVIEW=1`` turns it on for every run whatever this says
    (``shipyard.nodes.validate.review_enabled``). The model is the reviewer role's
    (``SHIPYARD_REVIEWER_MODEL``)."""

    enabled: bool = False


class ConfiguredCheck(_Table):
    """One configured check. A string command is split like a shell would, but never run by one."""

    name: str = Field(min_length=1)
    command: list[str] = Field(min_length=1)
    kind: Literal["pytest", "ruff", "mypy", "npm", "exit-code"] = "exit-code"
    timeout: float = Field(default=600.0, gt=0)

    @field_validator("command", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        if (meta := shell_metachar(value)) is not None:
            raise ValueError(f"checks run without a shell; {meta} is not allowed")
        try:
            return shlex.split(value)
        except ValueError as err:
            raise ValueError(f"cannot parse command: {err}") from None


class Checks(_Table):
    """``[checks]``: ``detect`` finds the repository's checks; ``[[checks.run]]`` adds some."""

    detect: bool = True
    run: list[ConfiguredCheck] = Field(default_factory=list)
    cache: bool = True
    """Reuse a check's result for the same tree, check, toolchain, environment and policy;
    ``false`` runs every check every time."""
    timeout_s: float = Field(default=600.0, gt=0)
    """Wall-clock limit of every check (a configured check's own ``timeout`` may be lower)."""
    baseline_failures: Literal["ignore", "fail"] = "fail"
    """``fail`` (the default): every failure counts — a goal is often "make this failing test
    pass", and that test fails at the base too. ``ignore``: a failing check passes when each
    of its failures fails at the base commit too (``tools/preexisting.py``); for runs judged
    by other tests, as ``shipyard eval`` sets it."""


class PolicyDecision(BaseModel):
    """A policy decision, recorded with the run exactly as ``model_dump()`` gives it."""

    action: Action
    rule: str = Field(description="The matching rule text, or 'default'.")
    reason: str


class CommandDecision(PolicyDecision):
    """What to do with a command. With ``shell``, ``argv`` is ``[command_line]`` for ``sh -c``."""

    argv: list[str]
    shell: bool = False


class PathDecision(PolicyDecision):
    """What to do with a read or write of a workspace path."""

    path: str
    op: Literal["read", "write"]


class Policy(_Table):
    """The effective policy of one run. Immutable; remembered approvals are passed in."""

    commands: CommandRules = Field(default_factory=CommandRules)
    paths: PathRules = Field(default_factory=PathRules)
    network: bool = False
    budgets: Budgets = Field(default_factory=Budgets)
    approvals: Approvals = Field(default_factory=Approvals)
    min_isolation: IsolationLevel = "none"
    below_min_isolation: Literal["refuse", "ask"] = "refuse"
    checks: Checks = Field(default_factory=Checks)
    review: Review = Field(default_factory=Review)
    agent: AgentPolicy = Field(default_factory=AgentPolicy)
    """``[agent]``: the agent's working aids and their bounds (``shipyard.policy.agent``)."""
    deliver: DeliverPolicy = Field(default_factory=DeliverPolicy)
    """``[deliver]``: push the branch, open a pull request (``shipyard.policy.deliver``)."""
    environment: Environment = Field(default_factory=Environment)
    """``[environment]``: the checks' interpreter and setup (``shipyard.tools.environment``)."""
    _source: str = PrivateAttr(default="built-in defaults")

    @field_validator("network")
    @classmethod
    def _network_off(cls, value: bool) -> bool:
        if value:
            raise ValueError(
                "network = true is not supported yet: commands always run without network"
            )
        return value

    @property
    def source(self) -> str:
        """The file this policy came from, or ``"built-in defaults"``."""
        return self._source

    @property
    def content_hash(self) -> str:
        """A stable hash of the effective policy, built-in rules included."""
        builtin = BUILTIN_RULES if self.commands.builtin else {}
        effective = {"policy": self.model_dump(mode="json"), "builtin": builtin}
        return content_hash({**effective, "protected": BUILTIN_PROTECTED})

    def check_command(self, command: str, remembered: Sequence[str] = ()) -> CommandDecision:
        """Decide ``command`` (a command line as the model wrote it).

        ``remembered`` are patterns approved for the rest of the run; they turn ``ask`` into
        ``allow`` and never lift a ``deny``. Raises ``PolicyError`` for an unparsable
        remembered pattern.
        """
        text = command.strip()
        if not text:
            return CommandDecision(action="deny", argv=[], rule="default", reason="empty command")
        meta = shell_metachar(text)
        if meta is not None:
            return self._shell_decision(text, meta)
        try:
            argv = shlex.split(text)
        except ValueError as err:
            return CommandDecision(
                action="deny", argv=[], rule="default", reason=f"cannot parse command: {err}"
            )
        verdict = decide(argv, self._rule_set(), remembered)
        return CommandDecision(
            action=verdict.action, argv=argv, rule=verdict.rule, reason=verdict.reason
        )

    def _shell_decision(self, text: str, meta: str) -> CommandDecision:
        for rule in self.commands.shell:
            if shell_rule_regex(rule).fullmatch(text):
                if (refused := shell_refusal(text)) is not None:
                    return _through_shell("deny", text, refused.rule, refused.reason)
                reason = f"shell allowed by [commands].shell rule {rule!r}"
                return _through_shell("allow", text, rule, reason)
        reason = (
            f"shell metacharacters: {meta} outside quotes needs a shell, and no "
            "[commands].shell rule allows this command line; run one plain command at a time"
        )
        return _through_shell("deny", text, "default", reason)

    def _rule_set(self) -> RuleSet:
        c = self.commands
        order: list[Action] = ["deny", "ask", "allow"]
        own = {"deny": c.deny, "ask": c.ask, "allow": c.allow}
        project = [(a, r) for a in order for r in own[a]]
        builtin = [(a, r) for a in order for r in BUILTIN_RULES[a]] if c.builtin else []
        return RuleSet(project=project, builtin=builtin, default=c.default)

    def check_path(self, path: str, op: Literal["read", "write"]) -> PathDecision:
        """Decide a read or write of ``path`` (relative to the workspace root).

        Forbidden globs deny both; protected globs make a write ``ask``; reads of protected
        paths are allowed. A path that leaves the workspace is denied.
        """
        rel = normalize_path(path)
        if rel is None:
            return PathDecision(
                action="deny", path=path, op=op, rule="default", reason="it leaves the workspace"
            )
        if (glob := _first_glob(self.paths.forbidden, rel)) is not None:
            reason = f"forbidden by [paths].forbidden {glob!r}"
            return PathDecision(action="deny", path=rel, op=op, rule=glob, reason=reason)
        glob = _first_glob((*BUILTIN_PROTECTED, *self.paths.protected), rel)
        if op == "write" and glob is not None:
            reason = f"protected path {glob!r}: a change needs approval"
            return PathDecision(action="ask", path=rel, op=op, rule=glob, reason=reason)
        return PathDecision(action="allow", path=rel, op=op, rule="default", reason="not protected")

    def check_isolation(self, achieved: IsolationLevel) -> PolicyDecision:
        """Compare the launcher's level with ``min_isolation``: allow, or refuse/ask below it."""
        need = self.min_isolation
        if ISOLATION_ORDER.index(achieved) >= ISOLATION_ORDER.index(need):
            reason = f"isolation {achieved!r} meets the minimum {need!r}"
            return PolicyDecision(action="allow", rule="min_isolation", reason=reason)
        action: Action = "deny" if self.below_min_isolation == "refuse" else "ask"
        reason = f"isolation {achieved!r} is below the minimum {need!r}"
        return PolicyDecision(action=action, rule="min_isolation", reason=reason)


def _through_shell(action: Action, text: str, rule: str, reason: str) -> CommandDecision:
    # Built from a dict: ``shell`` here is a recorded fact, not a subprocess flag.
    fields = {"action": action, "argv": [text], "shell": True, "rule": rule, "reason": reason}
    return CommandDecision.model_validate(fields)


def _first_glob(globs: Sequence[str], rel: str) -> str | None:
    return next((glob for glob in globs if glob_regex(glob).fullmatch(rel)), None)


def budget_exceeded(usage: Usage, budgets: Budgets) -> str | None:
    """A sentence naming the first run budget that ``usage`` has reached, else None.

    Limits are reached at equality, so callers check before spending more.
    """
    tokens = usage.input_tokens + usage.output_tokens
    checks: list[tuple[bool, str]] = [
        (usage.tool_calls >= budgets.tool_calls,
         f"tool-call budget spent: {usage.tool_calls} of {budgets.tool_calls} tool calls"),
        (usage.model_calls >= budgets.model_calls,
         f"model-call budget spent: {usage.model_calls} of {budgets.model_calls} model calls"),
        (tokens >= budgets.tokens, f"token budget spent: {tokens} of {budgets.tokens} tokens"),
        (usage.cost_usd >= budgets.cost_usd,
         f"cost budget spent: ${_dollars(usage.cost_usd)} of ${_dollars(budgets.cost_usd)}"),
        (usage.wall_s >= budgets.wall_s,
         f"wall-time budget spent: {_seconds(usage.wall_s)} s of {_seconds(budgets.wall_s)} s"),
    ]  # fmt: skip
    return next((sentence for spent, sentence in checks if spent), None)


def _figure(value: float) -> str:
    """Three significant digits, never in exponent form: 0.5, 0.042, 12.3."""
    text = f"{value:.3g}"
    return text if "e" not in text else f"{value:.6f}".rstrip("0").rstrip(".")


def _seconds(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else _figure(value)


def _dollars(value: float) -> str:
    return f"{value:.2f}" if value >= 0.1 or value == 0 else _figure(value)


def load_policy(repo: Path, overrides: Mapping[str, Any] | None = None) -> Policy:
    """Load ``repo/.shipyard.toml`` (if present) merged with ``overrides``.

    Raises ``PolicyError`` naming the file, line and field for a file that is not TOML,
    has unknown keys or values of the wrong type; errors in ``overrides`` name the override.
    """
    path = repo / POLICY_FILE
    text, data = read_toml(path)
    merged = _deep_merge(data, overrides or {})
    try:
        policy = Policy.model_validate(merged)
    except ValidationError as err:
        raise policy_error_from_validation(err, path, text, overrides or {}) from None
    if text is not None:
        policy._source = str(path)
    return policy


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


__all__ = [
    "BUILTIN_RULES",
    "POLICY_FILE",
    "Approvals",
    "Budgets",
    "Checks",
    "CommandDecision",
    "CommandRules",
    "ConfiguredCheck",
    "PathDecision",
    "PathRules",
    "Policy",
    "PolicyDecision",
    "Review",
    "budget_exceeded",
    "load_policy",
    "remember_pattern",
]
