"""The tables of argument forms by which a program runs another program, runs code given as
an argument, loads code or configuration, or writes a file it was not asked to change.

Data only; :mod:`shipyard.policy.exec_forms` reads these tables. One :class:`Options`
per program (or git subcommand) says how that program spells its options and which forms
are refused; :class:`Wrapper` entries describe programs that run the command that follows
their own options (``env``, ``timeout``, ...), whose wrapped command is decided on its own.
Programs are looked up by the basename of ``argv[0]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

EXEC = "runs another program"
CODE = "runs code given as an argument"
LOADS = "loads code or configuration"
WRITES = "writes a file"
GPG = "runs gpg to check or make signatures"
REPO = "uses another repository, whose configuration can run programs"


@dataclass(frozen=True)
class Form:
    """One refused form. ``option`` is ``--long``, ``-s`` (one short letter) or ``-word``
    (single-dash programs such as ``find``). With ``safe`` (a regex), the form is refused only
    when its value does not fully match it."""

    option: str
    effect: str
    safe: str | None = None


@dataclass(frozen=True)
class Options:
    """How one program spells its options and which forms are refused.

    ``values`` are the short letters that take a value (the rest of a cluster or the next
    argument); they must be exact, since scanning a cluster stops at them. ``abbrev``: long
    options may be abbreviated to any prefix (git, getopt_long, argparse and nopt do this).
    ``single_dash``: options are whole words (``-exec``), never clusters. ``operand_ends``:
    options end at the first operand, the rest belongs to a script. ``commands``: refused
    when the first operand is one of these words. ``requires``: refused unless one of these
    arguments is present. ``refused``: the program is refused outright, for this effect.
    ``modules`` (interpreters): ``-m MODULE`` hands the rest to that module's table.
    ``arg_files``: ``@file`` reads more arguments from a file the rules cannot see.
    ``long_values``: long options that take the next argument (with ``operand_ends``).
    """

    forms: tuple[Form, ...] = ()
    values: str = ""
    abbrev: bool = True
    single_dash: bool = False
    operand_ends: bool = False
    commands: Mapping[str, str] = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    refused: str | None = None
    modules: bool = False
    arg_files: bool = False
    long_values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Wrapper:
    """A program that runs the command following its own options and ``operands`` leading
    operands (``timeout 5 cmd``: one). ``values``/``long_values`` take a value; ``flags``/
    ``long_flags`` do not; any other option is an unknown form. ``forms`` are refused.
    ``assignments``: ``NAME=value`` operands set the environment (``env``); ``numeric``:
    ``-10`` is an option (``nice``); ``subcommand``: only that first argument makes the
    program a wrapper (``uv run``)."""

    values: str = ""
    flags: str = ""
    long_values: tuple[str, ...] = ()
    long_flags: tuple[str, ...] = ()
    operands: int = 0
    forms: tuple[Form, ...] = ()
    assignments: bool = False
    numeric: bool = False
    subcommand: str = ""


NONE = Options()


def _forms(effect: str, *options: str) -> tuple[Form, ...]:
    return tuple(Form(option, effect) for option in options)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_NO_GPG_FORMAT = r"(?s)(?!.*%G).*"
_SAFE_GIT_CONFIG = (
    r"(?i:color(?:\.[\w-]+){1,2}|user\.(?:name|email)|advice\.[\w-]+|column\.ui"
    r"|core\.(?:quotepath|abbrev|autocrlf|safecrlf|ignorecase)|init\.defaultbranch"
    r"|diff\.(?:renames|algorithm|noprefix|mnemonicprefix|relative|context|colormoved"
    r"|indentheuristic|interhunkcontext|statgraphwidth|suppressblankempty)"
    r"|grep\.(?:linenumber|column|patterntype|extendedregexp|fullname|threads)"
    r"|log\.(?:date|decorate|abbrevcommit|follow|mailmap|excludedecoration)"
    r"|blame\.(?:date|coloring|showemail|showroot|blankboundary)"
    r"|status\.(?:short|branch|showstash|relativepaths|showuntrackedfiles|aheadbehind|renames)"
    r")(?:=.*)?"
)
SAFE_GIT_CONFIG = r"(?s:" + _SAFE_GIT_CONFIG + ")"
"""``git -c`` settings known not to run anything; any other key is refused (unknown form)."""

GIT_CONFIG_ANYWHERE = rf"(?s:(?![^=]*\.[^=]*=).*|{_SAFE_GIT_CONFIG})"
"""After the subcommand ``-c`` is not a config option, but a ``key=value`` there is refused
unless safe, so the form cannot be moved into a position that is later read as one."""

GIT_GLOBAL_FORMS = (
    Form("-c", "sets configuration, which can run programs", SAFE_GIT_CONFIG),
    Form("--config-env", "sets configuration, which can run programs"),
    Form("--exec-path", "runs git subcommands from another directory", ""),
    Form("-C", REPO),
    Form("--git-dir", REPO),
    Form("--work-tree", REPO),
    Form("--help", "runs man, info or a browser"),
)
GIT_GLOBAL_VALUES = frozenset(
    {"-c", "-C", "--git-dir", "--work-tree", "--namespace", "--super-prefix", "--config-env",
     "--shallow-file", "--list-cmds", "--attr-source"}
)  # fmt: skip
"""Global options that take the next argument as their value when written without ``=``."""
GIT_GLOBAL_FLAGS = frozenset(
    {"-p", "--paginate", "-P", "--no-pager", "--bare", "--no-replace-objects",
     "--literal-pathspecs", "--no-literal-pathspecs", "--glob-pathspecs", "--noglob-pathspecs",
     "--icase-pathspecs", "--no-optional-locks", "--version", "-v", "-h", "--html-path",
     "--man-path", "--info-path", "--exec-path"}
)  # fmt: skip

GIT_ANY = (
    Form("-c", "sets configuration, which can run programs", GIT_CONFIG_ANYWHERE),
    Form("--upload-pack", EXEC),
    Form("--receive-pack", EXEC),
    Form("--exec", EXEC),
    Form("--ext-diff", EXEC),
    Form("--extcmd", EXEC),
    Form("--tool", EXEC),
    Form("--open-files-in-pager", EXEC),
    Form("--output", WRITES),
    Form("--help", "runs man, info or a browser"),
    Form("--show-signature", GPG),
    Form("--verify-signatures", GPG),
    Form("--gpg-sign", GPG),
    Form("--format", GPG, _NO_GPG_FORMAT),
    Form("--pretty", GPG, _NO_GPG_FORMAT),
)
"""Refused after any git subcommand (git parses abbreviations of long options)."""

_SIGN = (Form("-S", GPG),)
_CONFIG_WRITE = "writes configuration that can run programs"
_CONFIG_WRITE_OPTIONS = (
    "--add --unset --unset-all --replace-all --edit -e --rename-section --remove-section"
)
_GIT_SPECIAL: dict[str, Options] = {
    "grep": Options((*GIT_ANY, Form("-O", EXEC)), values="efABCm"),
    "clone": Options((*GIT_ANY, Form("-u", EXEC)), values="obc"),
    "ls-remote": Options((*GIT_ANY, Form("-u", EXEC))),
    "rebase": Options((*GIT_ANY, Form("-x", EXEC), *_SIGN), values="sX"),
    "commit": Options((*GIT_ANY, *_SIGN), values="mFCct"),
    "merge": Options((*GIT_ANY, *_SIGN), values="msX"),
    "cherry-pick": Options((*GIT_ANY, *_SIGN), values="mX"),
    "revert": Options((*GIT_ANY, *_SIGN), values="mX"),
    "am": Options((*GIT_ANY, *_SIGN), values="pC"),
    "commit-tree": Options((*GIT_ANY, *_SIGN), values="pmF"),
    "pull": Options((*GIT_ANY, *_SIGN), values="sX"),
    "tag": Options((*GIT_ANY, *_forms(GPG, "-s", "-u", "-v")), values="mF"),
    "bisect": Options(GIT_ANY, commands={"run": EXEC}),
    "submodule": Options(GIT_ANY, commands={"foreach": EXEC}),
    "config": Options(
        (*GIT_ANY, *_forms(_CONFIG_WRITE, *_words(_CONFIG_WRITE_OPTIONS))),
        commands=dict.fromkeys(
            _words("set unset edit rename-section remove-section"), _CONFIG_WRITE
        ),
        requires=_words("--get --get-all --get-regexp --get-urlmatch --list -l get list"),
    ),
}
_GIT_REFUSED = {
    **dict.fromkeys(("difftool", "difftool--helper", "mergetool"), "runs a diff or merge tool"),
    **dict.fromkeys(("verify-commit", "verify-tag"), GPG),
    **dict.fromkeys(("help", "instaweb", "web--browse"), "runs man, info or a browser"),
    **dict.fromkeys(
        _words(
            "filter-branch merge-index merge-one-file for-each-repo hook remote-ext remote-fd"
            " send-email imap-send daemon http-backend shell credential credential-cache"
            " credential-cache--daemon credential-store upload-pack receive-pack upload-archive"
            " upload-archive--writer fsmonitor--daemon submodule--helper p4 svn cvsimport"
            " cvsserver cvsexportcommit archimport"
        ),
        EXEC,
    ),
}
_GIT_PLAIN = _words("""
add add--interactive annotate apply archive bisect--helper blame branch bugreport bundle
cat-file check-attr check-ignore check-mailmap check-ref-format checkout checkout--worker
checkout-index cherry clean column commit-graph count-objects describe diagnose diff
diff-files diff-index diff-tree env--helper fast-export fast-import fetch fetch-pack
fmt-merge-msg for-each-ref format-patch fsck fsck-objects gc get-tar-commit-id hash-object
http-fetch http-push index-pack init init-db interpret-trailers log ls-files ls-tree mailinfo
mailsplit maintenance merge-base merge-file merge-octopus merge-ours merge-recursive
merge-recursive-ours merge-recursive-theirs merge-resolve merge-subtree merge-tree mktag mktree
multi-pack-index mv name-rev notes pack-objects pack-redundant pack-refs patch-id pickaxe prune
prune-packed push quiltimport range-diff read-tree reflog refs remote repack replace replay
request-pull rerere reset restore rev-list rev-parse rm send-pack sh-i18n--envsubst shortlog
show show-branch show-index show-ref sparse-checkout stage stash status stripspace subtree
switch symbolic-ref unpack-file unpack-objects update-index update-ref update-server-info var
verify-pack version whatchanged worktree write-tree
""")
GIT_SUBCOMMANDS: dict[str, Options] = {
    **dict.fromkeys(_GIT_PLAIN, Options(GIT_ANY)),
    **_GIT_SPECIAL,
    **{name: Options(refused=effect) for name, effect in _GIT_REFUSED.items()},
}
"""Every git subcommand known; any other name is an alias or a ``git-<name>`` program on
``PATH``, which is an unknown form."""

_SHELL = Options(
    (Form("-c", CODE), Form("--rcfile", LOADS), Form("--init-file", LOADS),
     Form("--command", CODE), Form("-C", CODE), Form("--init-command", CODE)),
    values="oO", operand_ends=True, abbrev=False,
)  # fmt: skip
_PYTHON_WARNING = r"[^:]*(?::[^:]*(?::[^:.]*(?::.*)?)?)?"  # a category with a dot is imported
_PYTHON = Options(
    (Form("-c", CODE), Form("-W", LOADS, _PYTHON_WARNING)),
    values="cmWX",
    long_values=("--check-hash-based-pycs",),
    operand_ends=True,
    modules=True,
    abbrev=False,
)
_SANDBOX_ONLY = Options(requires=("--sandbox",), abbrev=False)
_RUNS_ARGS = "runs a program with arguments read while it runs, which the rules cannot see"
_RUNS_PACKAGE = "runs a package's program, which the rules cannot see"
_INSTALLS = "installs packages, which runs their build code"

PROGRAMS: dict[str, Options] = {
    # the built-in allow list
    "git": NONE,  # git has its own parser in exec_forms (global options, subcommands)
    "pytest": NONE,  # pytest runs the repository's code by design: -p, -c and conftest.py alike
    "py.test": NONE,
    "ruff": Options(_forms(WRITES, "--output-file", "-o")),
    "mypy": Options(
        (Form("--python-executable", EXEC), Form("--install-types", "installs packages")),
        arg_files=True,
    ),
    "pyright": Options(_forms(EXEC, "--pythonpath", "--venvpath", "--venv-path", "-v")),
    "npm": Options(
        (
            *_forms(EXEC, "--script-shell", "--shell"),
            *_forms(CODE, "--call", "-c"),
            *_forms(LOADS, "--node-options", "--userconfig", "--globalconfig"),
            *_forms("uses another project", "--prefix", "-C"),
        ),
        commands=dict.fromkeys(_words("exec x explore dlx rebuild rb"), _RUNS_PACKAGE),
    ),
    "rg": Options(
        (
            *_forms(EXEC, "--pre", "--hostname-bin"),
            *_forms("runs decompression programs", "--search-zip", "-z"),
        ),
        values="efgtTABCmMjrEd",
        abbrev=False,
    ),
    **dict.fromkeys(("ls", "cat", "head", "tail", "wc", "grep", "pwd", "true", "echo"), NONE),
    # their kin
    "find": Options(
        (
            *_forms(EXEC, "-exec", "-execdir", "-ok", "-okdir"),
            Form("-delete", "deletes files"),
            *_forms(WRITES, "-fprint", "-fprint0", "-fprintf", "-fls"),
        ),
        single_dash=True,
        abbrev=False,
    ),
    **dict.fromkeys(("sed", "awk", "gawk", "mawk", "nawk"), _SANDBOX_ONLY),
    **dict.fromkeys(("sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish"), _SHELL),
    "node": Options(
        (
            *_forms(CODE, "-e", "--eval", "-p", "--print"),
            *_forms(LOADS, "-r", "--require", "--import", "--loader", "--experimental-loader"),
        ),
        abbrev=False,
    ),
    "perl": Options(_forms(CODE, "-e", "-E", "-M", "-m")),
    "ruby": Options((Form("-e", CODE), Form("-r", LOADS)), abbrev=False),
    "php": Options((Form("-r", CODE),), abbrev=False),
    **dict.fromkeys(("xargs", "parallel"), Options(refused=_RUNS_ARGS)),
    **dict.fromkeys(("npx", "pnpx", "bunx", "uvx", "pipx"), Options(refused=_RUNS_PACKAGE)),
    **dict.fromkeys(
        _words(
            "watch strace ltrace gdb valgrind script unbuffer expect chroot unshare nsenter"
            " firejail bwrap systemd-run runuser at batch flock"
        ),
        Options(refused=EXEC),
    ),
}
"""Programs whose forms are known. Interpreters are matched as ``python``/``python3.11``/
``pypy3`` through :data:`INTERPRETERS`."""

INTERPRETERS = ("python", "python[0-9]*", "pypy", "pypy[0-9]*")
PYTHON = _PYTHON

MODULES: dict[str, Options] = {
    "pytest": PROGRAMS["pytest"],
    "mypy": PROGRAMS["mypy"],
    **dict.fromkeys(("timeit", "cProfile", "profile", "pdb", "trace"), Options(refused=CODE)),
}
"""``python -m MODULE``: the module's arguments are checked with its table."""

SAFE_ASSIGNMENT = (
    r"LANG|LANGUAGE|LC_[A-Z]+|TZ|COLUMNS|LINES|TERM|NO_COLOR|FORCE_COLOR|CLICOLOR(_FORCE)?|CI"
    r"|PYTHONDONTWRITEBYTECODE|PYTHONUNBUFFERED|PYTHONHASHSEED|PYTHONIOENCODING|PYTHONUTF8"
    r"|PYTHONFAULTHANDLER|PYTHONDEVMODE"
)
"""Environment variables ``env NAME=value`` may set; any other (``PATH``, ``LD_PRELOAD``,
``GIT_*``, ``HOME``, ``PYTHONPATH`` ...) can make the wrapped program load code."""

_ENV_FORMS = (
    Form("-S", "splits a string into a command the rules cannot see"),
    Form("--split-string", "splits a string into a command the rules cannot see"),
    Form("-C", "runs the command in another directory"),
    Form("--chdir", "runs the command in another directory"),
)
WRAPPERS: dict[str, Wrapper] = {
    "env": Wrapper(
        values="uSC",
        flags="i0v",
        long_values=("--unset", "--split-string", "--chdir"),
        long_flags=_words(
            "--ignore-environment --null --debug --block-signal --default-signal"
            " --ignore-signal --list-signal-handling"
        ),
        forms=_ENV_FORMS,
        assignments=True,
    ),
    "nice": Wrapper(values="n", long_values=("--adjustment",), numeric=True),
    "nohup": Wrapper(),
    "timeout": Wrapper(
        values="sk",
        flags="v",
        long_values=("--signal", "--kill-after"),
        long_flags=("--preserve-status", "--foreground", "--verbose"),
        operands=1,
    ),
    "stdbuf": Wrapper(values="ioe", long_values=("--input", "--output", "--error")),
    "setsid": Wrapper(flags="cfw", long_flags=("--ctty", "--fork", "--wait")),
    "ionice": Wrapper(values="cn", flags="t", long_values=("--class", "--classdata")),
    "time": Wrapper(
        values="fo",
        flags="apqv",
        long_values=("--format", "--output"),
        long_flags=("--append", "--portability", "--quiet", "--verbose"),
        forms=(Form("-o", WRITES), Form("--output", WRITES)),
    ),
    "taskset": Wrapper(flags="ac", long_flags=("--all-tasks", "--cpu-list"), operands=1),
    "chrt": Wrapper(values="TPD", flags="bdfiorRa", operands=1),
    "uv": Wrapper(
        subcommand="run",
        flags="qv",
        long_values=_words("--extra --group --only-group --no-group --package"),
        long_flags=_words(
            "--frozen --locked --no-sync --isolated --no-project --all-extras --no-dev"
            " --offline --active --quiet --verbose --no-editable --exact --inexact"
        ),
        forms=(
            *_forms(_INSTALLS, "--with", "--with-editable", "--with-requirements"),
            *_forms(LOADS, "--env-file", "--config-file"),
            *_forms("uses another project", "--directory", "--project"),
            *_forms("runs another interpreter", "--python", "-p"),
        ),
    ),
    "poetry": Wrapper(
        subcommand="run",
        flags="qvn",
        long_flags=_words("--quiet --verbose --no-interaction --no-ansi --ansi --no-plugins"),
        forms=_forms("uses another project", "--directory", "-C", "--project", "-P"),
    ),
    "busybox": Wrapper(),
    "toybox": Wrapper(),
}
"""Wrappers: the command they run is decided as a command of its own."""
