"""The exec-form check: every argument form by which a program the default policy allows (or
its kin) runs another program, runs code, loads code or configuration, or writes a file, is
refused before the allow rules, naming the built-in rule; ordinary commands still pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.policy.config import Policy, load_policy, remember_pattern

PAYLOAD = 'python3 -c \'open("/tmp/pwned", "w")\''

REFUSED = [
    # git grep's pager, in every spelling git accepts
    (f'git grep --open-files-in-pager="{PAYLOAD}" foo', "exec-option", "--open-files-in-pager"),
    ("git grep --open-files-in-pager sh foo", "exec-option", "--open-files-in-pager"),
    ("git grep --open-files-in-p=sh foo", "exec-option", "written --open-files-in-p"),
    ("git grep --open foo", "exec-option", "--open-files-in-pager"),
    ("git grep -O foo", "exec-option", "git grep -O"),
    ("git grep -Osh foo", "exec-option", "git grep -O"),
    ("git grep -nOsh foo", "exec-option", "git grep -O"),
    ("git grep -n -i -O foo", "exec-option", "git grep -O"),
    # git configuration that runs programs, in any position
    ("git -c core.pager='sh -c x' log", "exec-option", "git -c 'core.pager=sh -c x'"),
    ("git -c alias.x='!touch x' x", "exec-option", "git -c"),
    ("git -c core.fsmonitor=./evil status", "exec-option", "git -c"),
    ("git -c diff.external=./evil diff", "exec-option", "git -c"),
    ("git -c color.ui=never -c core.sshCommand=x status", "exec-option", "core.sshCommand"),
    ("git -c include.path=cfg status", "exec-option", "include.path"),
    ("git --config-env=core.pager=PAGER log", "exec-option", "--config-env"),
    ("git status -c core.fsmonitor=./evil", "exec-option", "git status -c"),
    ("git -cfoo=bar status", "unknown-form", "-cfoo"),
    # another repository, another exec path, man pages
    ("git -C sub status", "exec-option", "another repository"),
    ("git --git-dir=sub/.git log", "exec-option", "--git-dir"),
    ("git --work-tree=/ status", "exec-option", "--work-tree"),
    ("git --exec-path=./bin status", "exec-option", "--exec-path"),
    ("git --paginate --frobnicate status", "unknown-form", "--frobnicate"),
    ("git status --help", "exec-option", "runs man"),
    ("git x", "unknown-form", "alias or a git-x program"),
    # diff drivers, output files, signatures
    ("git diff --ext-diff", "exec-option", "git diff --ext-diff"),
    ("git log -p --ext-diff", "exec-option", "git log --ext-diff"),
    ("git show --ext-diff HEAD", "exec-option", "git show --ext-diff"),
    ("git diff --output=.git/x", "exec-option", "git diff --output"),
    ("git log --output .gitattributes", "exec-option", "writes a file"),
    ("git log --show-signature", "exec-option", "gpg"),
    ("git log --format=%G? -1", "exec-option", "gpg"),
    ("git show --pretty=format:%GS", "exec-option", "gpg"),
    # the rest of git's kin
    ("git ls-remote --upload-pack='touch x' origin", "exec-option", "--upload-pack"),
    ("git ls-remote -u 'touch x' origin", "exec-option", "git ls-remote -u"),
    ("git clone -u 'touch x' a b", "exec-option", "git clone -u"),
    ("git push --receive-pack='touch x' origin", "exec-option", "--receive-pack"),
    ("git archive --exec='touch x' --remote=o HEAD", "exec-option", "--exec"),
    ("git rebase -x 'touch x' HEAD~1", "exec-option", "git rebase -x"),
    ("git rebase --exec='touch x' HEAD~1", "exec-option", "--exec"),
    ("git bisect run ./evil", "exec-option", "git bisect run"),
    ("git difftool -x ./evil", "exec-program", "git difftool"),
    ("git mergetool", "exec-program", "git mergetool"),
    ("git filter-branch --tree-filter 'touch x'", "exec-program", "git filter-branch"),
    ("git config core.pager ./evil", "exec-option", "git config without --get"),
    ("git config --get --add core.pager x", "exec-option", "--add"),
    ("git commit -S -m x", "exec-option", "gpg"),
    ("git verify-commit HEAD", "exec-program", "gpg"),
    # ripgrep
    ("rg --pre ./evil.sh foo", "exec-option", "rg --pre"),
    ("rg --pre=./evil.sh foo", "exec-option", "rg --pre"),
    ("rg -z foo", "exec-option", "decompression"),
    ("rg -iz foo", "exec-option", "rg -z"),
    ("rg --search-zip foo", "exec-option", "decompression"),
    ("rg --hostname-bin=./evil foo", "exec-option", "--hostname-bin"),
    # type checkers
    ("mypy --python-executable ./evil src", "exec-option", "--python-executable"),
    ("mypy --python-exec=./evil src", "exec-option", "written --python-exec"),
    ("python -m mypy --python-executable=./evil src", "exec-option", "python -m mypy"),
    ("mypy --install-types", "exec-option", "installs packages"),
    ("mypy @args.txt", "exec-option", "reads arguments from a file"),
    ("pyright --pythonpath ./evil", "exec-option", "pyright --pythonpath"),
    ("pyright --venvpath .", "exec-option", "pyright --venvpath"),
    # npm
    ("npm test --script-shell=./evil", "exec-option", "--script-shell"),
    ("npm --script-sh ./evil test", "exec-option", "--script-shell"),
    ("npm run test --node-options='--require ./evil'", "exec-option", "--node-options"),
    ("npm exec -- evil", "exec-option", "npm exec"),
    ("npm x evil", "exec-option", "npm x"),
    ("npx evil", "exec-program", "npx"),
    # find, xargs, wrappers
    ("find . -exec sh -c 'touch x' +", "exec-option", "find -exec"),
    ("find . -execdir ./evil {} +", "exec-option", "find -execdir"),
    ("find . -ok rm {} +", "exec-option", "find -ok"),
    ("find -- . -okdir rm {} +", "exec-option", "find -okdir"),
    ("find . -delete", "exec-option", "deletes files"),
    ("find . -fprint .git/x", "exec-option", "find -fprint"),
    ("find . -fprintf x %p", "exec-option", "find -fprintf"),
    ("xargs -a list.txt git grep", "exec-program", "xargs"),
    ("xargs python3", "exec-program", "xargs"),
    (f"env {PAYLOAD}", "exec-option", "env runs python3 -c"),
    ("env -i python3 -c x", "exec-option", "python3 -c"),
    ("env PATH=./bin git status", "exec-option", "env PATH="),
    ("env LD_PRELOAD=./evil.so ls", "exec-option", "LD_PRELOAD"),
    ("env GIT_PAGER=./evil git grep foo", "exec-option", "GIT_PAGER"),
    ("env HOME=. git log", "exec-option", "HOME"),
    ("env PYTHONPATH=. pytest", "exec-option", "PYTHONPATH"),
    ("env -S 'python3 -c x'", "exec-option", "env -S"),
    ("env --split-str='sh -c x'", "exec-option", "--split-string"),
    ("env -C sub git status", "exec-option", "another directory"),
    ("env --frob ls", "unknown-form", "env --frob"),
    ("nice -n 5 sh -c 'touch x'", "exec-option", "sh -c"),
    ("nice -5 python3 -c x", "exec-option", "python3 -c"),
    ("nohup git grep -O foo", "exec-option", "git grep -O"),
    ("timeout 60 python3 -c x", "exec-option", "python3 -c"),
    ("timeout -k 5 60 rg --pre ./evil foo", "exec-option", "rg --pre"),
    ("stdbuf -oL xargs ls", "exec-program", "xargs"),
    ("setsid -f sh -c x", "exec-option", "sh -c"),
    ("time -o .git/x ls", "exec-option", "writes a file"),
    ("busybox sh -c x", "exec-option", "sh -c"),
    ("env timeout 5 nice env python3 -c x", "exec-option", "python3 -c"),
    ("timeout --frob 5 ls", "unknown-form", "timeout --frob"),
    # shells and interpreters
    ("sh -c 'touch x'", "exec-option", "sh -c"),
    ("bash -ec 'touch x'", "exec-option", "bash -c"),
    ("bash -o pipefail -c x", "exec-option", "bash -c"),
    ("bash +o errexit -c x", "exec-option", "bash -c"),
    ("python -Bmtimeit x", "exec-program", "python -m timeit"),
    ("dash -c x", "exec-option", "dash -c"),
    ("zsh -c x", "exec-option", "zsh -c"),
    ("/bin/sh -c x", "exec-option", "sh -c"),
    ("bash --rcfile evil script.sh", "exec-option", "--rcfile"),
    ("python -c 'print(1)'", "exec-option", "python -c"),
    ("python3 -Ic x", "exec-option", "python3 -c"),
    ("python3 -cpass", "exec-option", "python3 -c"),
    ("python3.11 -B -c x", "exec-option", "python3.11 -c"),
    (".venv/bin/python -c x", "exec-option", "python -c"),
    ("python -W ignore -c x", "exec-option", "python -c"),
    ("python -W ignore::evil.Warning -m pytest", "exec-option", "python -W"),
    ("python -m timeit 'x'", "exec-program", "python -m timeit"),
    ("node -e x", "exec-option", "node -e"),
    ("node --require ./evil app.js", "exec-option", "node --require"),
    ("perl -ne x f", "exec-option", "perl -e"),
    ("ruby -e x", "exec-option", "ruby -e"),
    ("sed -n '1e touch x' f", "exec-option", "sed without --sandbox"),
    ("awk 'BEGIN{system(\"x\")}'", "exec-option", "awk without --sandbox"),
    ("strace -f ls", "exec-program", "strace"),
    ("ruff check --output-file=.git/x src", "exec-option", "ruff --output-file"),
    ("ruff check -o .venv/bin/x src", "exec-option", "ruff -o"),
    ("uv run python -c x", "exec-option", "python -c"),
    ("uv run --with evil pytest", "exec-option", "uv run --with"),
    ("uv run --frob pytest", "unknown-form", "uv run --frob"),
    ("poetry run sh -c x", "exec-option", "sh -c"),
    ("poetry run -C ../other pytest", "exec-option", "another project"),
]


@pytest.mark.parametrize(("command", "rule", "named"), REFUSED)
def test_exec_forms_are_refused_naming_the_rule(command, rule, named):
    decision = Policy().check_command(command)
    assert (decision.action, decision.rule) == ("deny", rule), decision.reason
    assert named in decision.reason
    assert f'(built-in rule "{rule}")' in decision.reason


@pytest.mark.parametrize(("command", "rule", "named"), REFUSED[:12])
def test_a_project_allow_does_not_let_an_exec_form_through(tmp_path, command, rule, named):
    policy = _policy(tmp_path, 'allow = ["* *"]\n')
    decision = policy.check_command(command, remembered=["* *"])
    assert (decision.action, decision.rule) == ("deny", rule)


def test_a_project_deny_still_decides_first(tmp_path):
    policy = _policy(tmp_path, 'deny = ["git grep -O* *"]\n')
    decision = policy.check_command("git grep -Osh foo")
    assert (decision.action, decision.rule) == ("deny", "git grep -O* *")
    assert "project rule" in decision.reason


ALLOWED = [
    ("git grep -n foo", "git grep *"),
    ("git grep -e -n -i foo -- src", "git grep *"),
    ("git grep --or -e a -e b", "git grep *"),
    ("git diff --stat", "git diff *"),
    ("git diff --no-ext-diff HEAD~1", "git diff *"),
    ("git log --oneline -n 5", "git log *"),
    ("git log --format='%h %s' -- src", "git log *"),
    ("git log -c -p HEAD", "git log *"),
    ("git log -S needle --oneline", "git log *"),
    ("git show -s --format=%an HEAD", "git show *"),
    ("git show --stat HEAD", "git show *"),
    ("git status --porcelain", "git status *"),
    ("git rev-parse HEAD", "git rev-parse *"),
    ("git blame -L 1,5 README.md", "git blame *"),
    ("git ls-files -- '*.py'", "git ls-files *"),
    ("rg foo src", "rg *"),
    ("rg -n -i --glob '*.py' foo", "rg *"),
    ("rg --pre-glob '*.gz' foo", "rg *"),
    ("rg -e pre foo", "rg *"),
    ("grep -rn foo src", "grep *"),
    ("pytest -q tests/test_x.py", "pytest *"),
    ("pytest -p no:cacheprovider -c pytest.ini", "pytest *"),
    ("python -m pytest -c pytest.ini -x", "python -m pytest *"),
    ("python3 -m pytest -W error::DeprecationWarning", "python3 -m pytest *"),
    ("mypy --python-version 3.11 src", "mypy *"),
    ("ruff check --fix src", "ruff check *"),
    ("npm test -- --script-shell=x", "npm test *"),
    ("npm run lint", "npm run lint *"),
    ("ls -la", "ls *"),
    ("cat README.md", "cat *"),
    ("head -n 5 x", "head *"),
    ("tail -n 5 x", "tail *"),
    ("wc -l x", "wc *"),
    ("echo -c sh", "echo *"),
    ("pwd", "pwd"),
    ("true", "true"),
]


@pytest.mark.parametrize(("command", "rule"), ALLOWED)
def test_ordinary_commands_are_still_allowed(command, rule):
    decision = Policy().check_command(command)
    assert (decision.action, decision.rule) == ("allow", rule), decision.reason


@pytest.mark.parametrize(
    "command",
    ["find . -name '*.py'", "sh script.sh", "python3 script.py -c x", "git -c color.ui=never log",
     "env", "git --version", "sed --sandbox -n 1p f"],
)  # fmt: skip
def test_commands_without_exec_forms_go_to_the_rules(command):
    decision = Policy().check_command(command)
    assert (decision.action, decision.rule) == ("ask", "default"), decision.reason


def test_a_wrapper_gets_the_stricter_of_its_own_and_its_commands_decision(tmp_path):
    policy = _policy(tmp_path, 'allow = ["timeout *", "env *"]\n')
    wrapped = policy.check_command("timeout 60 pytest -q")
    assert (wrapped.action, wrapped.rule, wrapped.argv[0]) == ("allow", "pytest *", "timeout")
    assert "timeout 60 runs pytest -q" in wrapped.reason
    assert policy.check_command("timeout 60 make").action == "ask"
    assert policy.check_command("env LANG=C pytest").action == "allow"
    assert policy.check_command("env -i -u HOME -- pytest -q").action == "allow"
    assert policy.check_command("timeout 60 curl x").rule == "curl *"
    assert Policy().check_command("timeout 60 pytest").action == "ask"  # timeout itself asks


def test_approving_a_wrapped_command_never_covers_another_program(tmp_path):
    policy = _policy(tmp_path, 'allow = ["timeout *"]\n')
    pattern = remember_pattern(["timeout", "60", "make", "-j4"])
    assert pattern == "timeout 60 make *"
    assert policy.check_command("timeout 60 make all", remembered=[pattern]).action == "allow"
    assert policy.check_command("timeout 60 python3 x.py", remembered=[pattern]).action == "ask"
    denied = policy.check_command("timeout 60 sh -c x", remembered=[pattern, "timeout *"])
    assert (denied.action, denied.rule) == ("deny", "exec-option")


def test_shell_rules_meet_the_exec_form_check_in_every_segment(tmp_path):
    policy = _policy(tmp_path, 'shell = ["rg * | head -n *", "pytest -q * | tail -n *"]\n')
    assert policy.check_command("rg foo src | head -n 5").action == "allow"
    denied = policy.check_command("rg --pre ./evil foo | head -n 5")
    assert (denied.action, denied.rule, denied.shell) == ("deny", "exec-option", True)
    assert policy.check_command("pytest -q x | tail -n 5").action == "allow"


def _policy(tmp_path: Path, commands: str) -> Policy:
    (tmp_path / ".shipyard.toml").write_text("[commands]\n" + commands)
    return load_policy(tmp_path)
