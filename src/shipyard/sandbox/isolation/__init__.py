"""The layers behind ``shipyard.sandbox.launcher``: one module per mechanism.

``process`` (session, rlimits, bounded output), ``environment`` (allowlist), ``request``
(checking argv/cwd), ``bubblewrap``, ``namespace`` (network), ``landlock``, ``seccomp``,
``cgroup`` (pids), ``cgroup_parent`` (where each user's cgroups go), ``probe`` (what works
here), ``layers`` (what a level uses and the report), ``limit`` (which limit ended a
command). Import the launcher from ``shipyard.sandbox.launcher``; these modules are its
implementation.
"""
