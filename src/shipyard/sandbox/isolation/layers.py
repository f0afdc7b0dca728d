"""Choosing the layers for a level from the probed capabilities, and reporting them.

The report names every layer that holds and, for every one that does not, why — the
reason the probe found, or the reason a stronger layer makes it unnecessary or impossible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shipyard.contracts import ISOLATION_ORDER, IsolationLevel, IsolationReport
from shipyard.sandbox.isolation import landlock
from shipyard.sandbox.isolation.probe import Capabilities

_ALWAYS = ["argv-no-shell", "env-allowlist", "process-group", "output-cap", "rlimits"]
_BWRAP_HELD = [
    "bubblewrap", "read-only-root", "filesystem-view", "etc-masked", "no-host-unix-sockets",
    "private-tmp", "git-hooks-readonly", "network-namespace",
    "user-namespace-uid-65534", "pid-namespace", "ipc-uts-namespaces", "cap-drop-all",
    "no-new-user-namespaces", "no-new-privs",
]  # fmt: skip


@dataclass(frozen=True)
class Layers:
    """What the launcher does for every command at its level."""

    level: IsolationLevel
    bwrap: str | None
    netns: bool
    landlock_abi: int
    seccomp: bool
    pids_cgroup: bool
    report: IsolationReport


def best_level(caps: Capabilities, prefer: IsolationLevel) -> IsolationLevel:
    """The strongest level available that is not above ``prefer`` (never below
    ``process``: its layers are always applied)."""
    available: list[IsolationLevel] = ["process"]
    if caps.netns:
        available.append("namespace")
    if caps.bwrap:
        available.append("bubblewrap")
    wanted = max(ISOLATION_ORDER.index(prefer), ISOLATION_ORDER.index("process"))
    return [lvl for lvl in available if ISOLATION_ORDER.index(lvl) <= wanted][-1]


def choose(caps: Capabilities, prefer: IsolationLevel, *, network: bool = False) -> Layers:
    """The layers to apply at the best level up to ``prefer``."""
    level = best_level(caps, prefer)
    bwrap = caps.bwrap if level == "bubblewrap" else None
    netns = level == "namespace" and not network
    # Landlock before exec would forbid bubblewrap's own mounts, and bwrap 0.8 cannot
    # apply it itself, so under bubblewrap it is not used (its mounts already confine writes).
    abi = 0 if bwrap else caps.landlock_abi
    layers = Layers(
        level=level,
        bwrap=bwrap,
        netns=netns,
        landlock_abi=abi,
        seccomp=caps.seccomp,
        pids_cgroup=caps.pids_root is not None,
        report=IsolationReport(level=level),
    )
    held, missing = _describe(caps, layers, prefer, network)
    return Layers(
        **{**layers.__dict__, "report": IsolationReport(level=level, held=held, missing=missing)}
    )


def _describe(
    caps: Capabilities, layers: Layers, prefer: IsolationLevel, network: bool
) -> tuple[list[str], dict[str, str]]:
    held = list(_ALWAYS)
    missing: dict[str, str] = {}
    if layers.bwrap:
        held += _BWRAP_HELD
        missing["landlock"] = (
            "not applied under bubblewrap: bwrap 0.8 cannot load it, and loading it before "
            "bwrap forbids bwrap's mounts; the read-only mounts confine writes instead"
        )
        if network:
            missing["offline"] = (
                "outbound network for this command through slirp4netns (its own namespace; "
                "this machine's loopback unreachable)"
            )
    else:
        missing["bubblewrap"] = caps.why.get("bubblewrap") or f"not requested (prefer={prefer})"
        missing["read-only-root"] = "only bubblewrap mounts the system read-only"
        missing["git-hooks-readonly"] = "only bubblewrap mounts .git/hooks and config read-only"
        missing["pid-namespace"] = "only bubblewrap gives the command its own pid namespace"
        if caps.is_root:
            missing["cap-drop-all"] = (
                "only bubblewrap drops capabilities and maps to uid 65534; below it the "
                "command keeps the caller's root privileges, confined by Landlock and seccomp"
            )
        _describe_netns(caps, layers, prefer, network, held, missing)
        _describe_landlock(caps, layers, held, missing)
    if layers.seccomp:
        held.append("seccomp")
    else:
        missing["seccomp"] = caps.why.get("seccomp", "unavailable")
    if layers.pids_cgroup:
        held.append("pids-cgroup")
    else:
        missing["pids-cgroup"] = caps.why.get("pids-cgroup", "unavailable")
    if not layers.pids_cgroup and caps.is_root:
        missing["process-limit"] = (
            "RLIMIT_NPROC is not enforced for uid 0 and no pids cgroup is available: "
            + caps.why.get("pids-cgroup", "unknown")
        )
    return held, missing


def _describe_netns(
    caps: Capabilities,
    layers: Layers,
    prefer: IsolationLevel,
    network: bool,
    held: list[str],
    missing: dict[str, str],
) -> None:
    if layers.netns:
        held.append("network-namespace")
    elif network:
        missing["network-namespace"] = "network allowed by policy for this launcher"
    else:
        missing["network-namespace"] = caps.why.get("namespace") or f"not requested ({prefer=})"


def _describe_landlock(
    caps: Capabilities, layers: Layers, held: list[str], missing: dict[str, str]
) -> None:
    missing["host-sockets"] = (
        "only bubblewrap hides the host's Unix sockets: connect() to a pathname socket "
        "(/var/run/postgresql, a database under SHIPYARD_HOME) is not refused by Landlock"
    )
    if not layers.landlock_abi:
        missing["landlock"] = caps.why.get("landlock", "unavailable")
        missing["filesystem-view"] = (
            "neither bubblewrap nor Landlock is available: the command can read every file "
            "the caller can (home, SHIPYARD_HOME, other runs' workspaces) and, in /proc, "
            "the environment of the caller's processes — Shipyard's secrets included"
        )
        return
    missing["private-proc"] = (
        "only bubblewrap gives the command a /proc of its own; below it /proc is withheld "
        "(the host's would show the environment of Shipyard's processes), so tools that "
        "read /proc/self (ps, Node's memoryUsage) fail"
    )
    missing["filesystem-metadata"] = (
        "Landlock refuses opening and listing outside the view, not stat(): whether a path "
        "exists, its size and owner can still be probed"
    )
    missing["private-dev-shm"] = "without bubblewrap /dev/shm is the host's, shared with it"
    held.append("etc-masked")
    features = landlock.held_features(layers.landlock_abi)
    if layers.netns and "landlock-net-tcp" in features:
        # The namespace already cuts the host network; TCP inside it (its own loopback)
        # stays usable for test suites that talk to themselves.
        features.remove("landlock-net-tcp")
    held += [f"{f}(abi {layers.landlock_abi})" for f in features]
    if not layers.netns:
        missing["network-udp"] = "without a network namespace only TCP is refused (Landlock)"


def report_hidden(report: IsolationReport, masked: list[Path], *, under_bwrap: bool) -> None:
    """Add to ``report`` whether the forbidden paths of one command were masked in its
    workspace (their committed content, if any, stays in the git object store)."""
    if under_bwrap or not masked:
        report.held.append("forbidden-paths-masked")
        return
    report.missing["forbidden-paths-masked"] = (
        f"{len(masked)} workspace path(s) matching the forbidden globs stay readable by "
        "commands: only bubblewrap can mask them"
    )
