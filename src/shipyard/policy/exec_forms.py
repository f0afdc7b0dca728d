"""The check every command meets before the allow and ask rules: argument forms by which a
program runs another program, runs code given as an argument, loads code or configuration,
or writes a file it was not asked to change (the tables are in
:mod:`shipyard.policy.exec_form_tables`).

:func:`refusal` names such a form, or an unknown one where the check must understand the
command line to be sure (a git global option, a git subcommand that is not a git command, a
wrapper's option); :func:`unwrap` finds the command a wrapper (``env``, ``timeout``, ...)
runs, which ``Policy.check_command`` decides as a command of its own. The rules apply to the
argv exactly as it will run: every argument is read as a possible option (a value that looks
like a refused option is refused too), long options match any prefix where the program
accepts abbreviations, short options match inside clusters (``-nO``), and ``--`` ends the
options except for ``find``, whose expression follows it.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache

from shipyard.policy.exec_form_tables import (
    GIT_GLOBAL_FLAGS,
    GIT_GLOBAL_FORMS,
    GIT_GLOBAL_VALUES,
    GIT_SUBCOMMANDS,
    INTERPRETERS,
    MODULES,
    PROGRAMS,
    PYTHON,
    SAFE_ASSIGNMENT,
    WRAPPERS,
    Form,
    Options,
    Wrapper,
)

EXEC_OPTION = "exec-option"
"""Rule name: an argument form that makes the program run or load something else."""
EXEC_PROGRAM = "exec-program"
"""Rule name: a program that runs a command the rules cannot see (``xargs``, ``npx``, ...)."""
UNKNOWN_FORM = "unknown-form"
"""Rule name: a form the check must understand to be sure, and does not."""


@dataclass(frozen=True)
class Refusal:
    """Why a command is refused: the built-in rule's name and a sentence naming the form."""

    rule: str
    text: str


def refusal(argv: Sequence[str]) -> Refusal | None:
    """The refusal for ``argv`` (a non-empty argv), or None when no known form is in it.

    A wrapper's own options are checked here; the command it wraps is not (see
    :func:`unwrap`).
    """
    name = posixpath.basename(argv[0])
    args = list(argv[1:])
    if name == "git":
        return _git(args)
    if (wrapper := WRAPPERS.get(name)) is not None:
        return _wrapper(name, wrapper, args)[0]
    options = _program_options(name)
    return None if options is None else _scan(name, options, args)


def unwrap(argv: Sequence[str]) -> int | None:
    """Where the command a wrapper runs starts in ``argv`` (``timeout 5 pytest`` -> 2), or
    None when ``argv`` is not a wrapper running a command."""
    name = posixpath.basename(argv[0]) if argv else ""
    wrapper = WRAPPERS.get(name)
    if wrapper is None:
        return None
    refused, start = _wrapper(name, wrapper, list(argv[1:]))
    return None if refused is not None or start is None else start + 1


def _program_options(name: str) -> Options | None:
    if name in PROGRAMS:
        return PROGRAMS[name]
    if any(fnmatchcase(name, pattern) for pattern in INTERPRETERS):
        return PYTHON
    return None


# ----- one program's arguments ---------------------------------------------------------------


def _scan(label: str, options: Options, args: list[str]) -> Refusal | None:
    if options.refused is not None:
        return Refusal(EXEC_PROGRAM, f"{label} {options.refused}")
    if options.requires and not set(options.requires) & set(args):
        needed = " or ".join(options.requires[:3])
        return Refusal(EXEC_OPTION, f"{label} without {needed} can run programs or write files")
    i = 0
    while i < len(args):
        arg, following = args[i], args[i + 1 :]
        if arg == "--" and not options.single_dash:
            return None
        if arg.startswith(("-", "+")) and len(arg) > 1:  # +o: shells take options this way
            found = _option(label, options, arg, following)
            if isinstance(found, Refusal):
                return found
            if found is not None:
                return _module(label, found, args, i)
            i += _skip(options, arg)
            continue
        if (word := _operand(label, options, arg)) is not None:
            return word
        if options.operand_ends:
            return None
        i += 1
    return None


def _operand(label: str, options: Options, arg: str) -> Refusal | None:
    if arg in options.commands:
        return Refusal(EXEC_OPTION, f"{label} {arg} {options.commands[arg]}")
    if options.arg_files and arg.startswith("@"):
        return Refusal(EXEC_OPTION, f"{label} {arg} reads arguments from a file")
    return None


def _skip(options: Options, arg: str) -> int:
    """Arguments an option takes up: 2 when its value is the next argument. Only needed
    where options end at the first operand, so that a value is not taken for one."""
    if not options.operand_ends or arg.startswith("--"):
        return 2 if arg in options.long_values else 1
    cluster = arg[1:]
    for index, letter in enumerate(cluster):
        if letter in options.values:
            return 2 if index == len(cluster) - 1 else 1
    return 1


def _option(label: str, options: Options, arg: str, following: list[str]) -> Refusal | str | None:
    """A refusal, the module named by ``-m`` (interpreters), or None for a harmless option."""
    nxt = following[0] if following else ""
    if arg.startswith("--") or options.single_dash:
        name, eq, value = arg.partition("=")
        for form in options.forms:
            given = value if eq else nxt
            if _long_match(options, form.option, name) and not _safe(form, given):
                return _form_refusal(label, form, name, given)
        return None
    return _cluster(label, options, arg, nxt)


def _cluster(label: str, options: Options, arg: str, nxt: str) -> Refusal | str | None:
    shorts = {f.option[1]: f for f in options.forms if len(f.option) == 2}
    for index, letter in enumerate(arg[1:], start=1):
        value = arg[index + 1 :] or nxt
        form = shorts.get(letter)
        if form is not None and not _safe(form, value):
            return _form_refusal(label, form, f"-{letter}", value)
        if letter in options.values:
            return value if options.modules and letter == "m" else None
    return None


def _module(label: str, module: str, args: list[str], index: int) -> Refusal | None:
    cluster = args[index]
    attached = cluster.index("m", 1) < len(cluster) - 1  # -mpytest, not -m pytest
    rest = args[index + 1 :] if attached else args[index + 2 :]
    options = MODULES.get(module)
    return None if options is None else _scan(f"{label} -m {module}", options, rest)


def _long_match(options: Options, option: str, name: str) -> bool:
    if name == option:
        return True
    return options.abbrev and option.startswith("--") and len(name) > 2 and option.startswith(name)


def _safe(form: Form, value: str) -> bool:
    return form.safe is not None and _regex(form.safe).fullmatch(value) is not None


@lru_cache(maxsize=64)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _form_refusal(label: str, form: Form, written: str, value: str = "") -> Refusal:
    """The refusal of ``form``; a form refused for its value shows the value (shortened)."""
    shown = form.option if written == form.option else f"{form.option} (written {written})"
    if form.safe is not None:
        shown += " " + shlex.quote(value if len(value) <= 60 else value[:57] + "...")
    return Refusal(EXEC_OPTION, f"{label} {shown} {form.effect}")


# ----- git: global options, then a subcommand ------------------------------------------------

_GIT_GLOBAL = {form.option: form for form in GIT_GLOBAL_FORMS}


def _git(args: list[str]) -> Refusal | None:
    i = 0
    while i < len(args) and args[i].startswith("-"):
        name, eq, attached = args[i].partition("=")
        takes_next = name in GIT_GLOBAL_VALUES and not eq
        value = (args[i + 1] if i + 1 < len(args) else "") if takes_next else attached
        form = _GIT_GLOBAL.get(name)
        if form is not None and not _safe(form, value):
            return _form_refusal("git", form, form.option, value)
        if name not in GIT_GLOBAL_VALUES | GIT_GLOBAL_FLAGS:
            return Refusal(UNKNOWN_FORM, f"git {name} is not a git option Shipyard knows")
        i += 2 if takes_next else 1
    if i == len(args):
        return None
    sub = args[i]
    options = GIT_SUBCOMMANDS.get(sub)
    if options is None:
        text = f"git {sub} is not a git command: git would run an alias or a git-{sub} program"
        return Refusal(UNKNOWN_FORM, text)
    return _scan(f"git {sub}", options, args[i + 1 :])


# ----- wrappers ------------------------------------------------------------------------------


def _wrapper(name: str, wrapper: Wrapper, args: list[str]) -> tuple[Refusal | None, int | None]:
    """``(refusal, None)``, or ``(None, index of the wrapped command in args or None)``."""
    i, operands, options_done = 0, 0, False
    if wrapper.subcommand:
        if not args or args[0] != wrapper.subcommand:
            return None, None
        name, i = f"{name} {wrapper.subcommand}", 1
    while i < len(args):
        arg = args[i]
        if not options_done and arg == "--":
            options_done, i = True, i + 1
        elif not options_done and arg.startswith("-") and arg != "-":
            step = _wrapper_option(name, wrapper, arg)
            if isinstance(step, Refusal):
                return step, None
            i += step
        elif wrapper.assignments and "=" in arg.lstrip("="):
            variable = arg.partition("=")[0]
            if not re.fullmatch(SAFE_ASSIGNMENT, variable):
                text = f"{name} {variable}=... can make the program it runs load code"
                return Refusal(EXEC_OPTION, text), None
            i += 1
        elif operands < wrapper.operands:
            operands, i = operands + 1, i + 1
        else:
            return None, i
    return None, None


def _wrapper_option(name: str, wrapper: Wrapper, arg: str) -> Refusal | int:
    """A refusal, or how many arguments the option takes up (1, or 2 with its value)."""
    if wrapper.numeric and arg[1:].isdigit():
        return 1
    if arg.startswith("--"):
        return _wrapper_long(name, wrapper, arg)
    for index, letter in enumerate(arg[1:], start=1):
        form = next((f for f in wrapper.forms if f.option == f"-{letter}"), None)
        if form is not None:
            return _form_refusal(name, form, form.option)
        if letter in wrapper.values:
            return 1 if index < len(arg) - 1 else 2
        if letter not in wrapper.flags:
            return _unknown_wrapper_option(name, f"-{letter}")
    return 1


def _wrapper_long(name: str, wrapper: Wrapper, arg: str) -> Refusal | int:
    written, eq, _ = arg.partition("=")
    known = (*wrapper.long_values, *wrapper.long_flags, *(f.option for f in wrapper.forms))
    matches = [o for o in known if o == written] or [o for o in known if o.startswith(written)]
    if len(set(matches)) != 1:
        return _unknown_wrapper_option(name, written)
    option = matches[0]
    form = next((f for f in wrapper.forms if f.option == option), None)
    if form is not None:
        return _form_refusal(name, form, written)
    return 2 if option in wrapper.long_values and not eq else 1


def _unknown_wrapper_option(name: str, option: str) -> Refusal:
    text = f"{name} {option} is not an option Shipyard knows, so what {name} runs is unclear"
    return Refusal(UNKNOWN_FORM, text)
