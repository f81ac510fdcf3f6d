"""``o2v verify``: an acceptance run of the whole deployed loop, cheap, bounded and cleaned up.

One module per concern: :mod:`target` (what the stacks deployed, read from their outputs, or the
local deployment), :mod:`plan` (what a run creates, its bound on cost and time, the confirmation),
:mod:`run_tag` (the run's tag and name prefix, and the clean-up of everything tagged, leftovers of
an interrupted run included), :mod:`loop_checks` (the loop, end to end), :mod:`account_checks`
(the points only a real account settles), :mod:`output` (one line per check), :mod:`local` (the
local account for ``--local``) and :mod:`runner` (the order, the confirmation and the clean-up on
every path). The checks talk to AWS through boto3 clients only; ``--local`` points them at the
local services, as ``o2v demo`` does, so the suite runs every check.
"""
