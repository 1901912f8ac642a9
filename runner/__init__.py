"""cw-runner: the process that runs a team's agents for cw, on any machine.

It talks to cw over HTTP only (``runner.client``) and imports nothing of Django or the
apps, so it installs and runs where the database is not. One loop per slot takes the
next run (``POST /api/runs/take-next``), prepares a git worktree per project
(``runner.gitwork``), writes the prompt, starts the agent CLI in its own process group
(``runner.agent``), ships every line it prints to the run's log (``runner.logship``),
heartbeats with the usage it reads from the stream (``runner.usage``) and finishes the
run (``runner.work``). ``runner.cli`` is the ``cw-runner`` command.
"""

__all__: list[str] = []
