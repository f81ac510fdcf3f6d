"""``o2v verify``'s order: input checks (nothing created), the plan and its confirmation, the
leftovers of an earlier run, the loop's checks, and the clean-up on success, failure and Ctrl-C."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from o2v_core.settings import Settings

from training.demo.interruption import guarded_signals, how_interrupted
from training.preflight.report import Check, Status
from training.preflight.runner import ClientFactory
from training.verify.account_checks import POINTS
from training.verify.loop_checks import LoopChecks
from training.verify.loop_results import RESULT_CHECKS
from training.verify.output import EXIT_BAD_INPUT, EXIT_INTERRUPTED, Output
from training.verify.plan import confirmed, make_plan
from training.verify.run_tag import VerifyRun, clean_up, is_verify_job
from training.verify.target import Target, VerifyInputError, served_record

TINY_TRAIN_ROWS = 300  # a deterministic STS-B sample: attempt 1 overfits it within a few epochs


@dataclass
class VerifyOptions:
    env_name: str = "dev"
    local: bool = False
    yes: bool = False
    keep: bool = False
    region: str | None = None
    data: Path | None = None  # STS-B directory (sts-train.csv, sts-dev.csv, sts-test.csv)
    work_dir: Path | None = None  # where the tiny dataset and local mode's files go (default: a temporary one)
    timeout: float = 3 * 3600.0
    poll_seconds: float = 10.0


def prepare_tiny_dataset(stsb_dir: Path, out: Path) -> Path:
    """``o2v prepare`` of a deterministic STS-B sample (the demo's preparation)."""
    from training.demo.data import prepare_data

    prepare_data(stsb_dir, out, TINY_TRAIN_ROWS)
    return out


def _stsb_dir(options: VerifyOptions) -> Path:
    from training.demo.options import SHARED_STSB

    directory = options.data or SHARED_STSB
    if not (directory / "sts-train.csv").is_file():
        raise VerifyInputError(f"no STS-B data in {directory}: pass --data DIR holding sts-train.csv, sts-dev.csv "
                               "and sts-test.csv (the official STS Benchmark files)")
    return directory


def served_elsewhere(session: Any, target: Target) -> str | None:
    """The endpoint already serves a model that is not a verify run's: verify would replace it."""
    record = served_record(session.client("ssm", region_name=target.region), target.serving_parameter)
    job = (record or {}).get("trainingJobName")
    return str(job) if job and not is_verify_job(target.deployment, job) else None


def verify_target(session: Any, target: Target, settings: Settings, options: VerifyOptions, output: Output,
                  work_dir: Path) -> int:
    """Everything after the target is known: the same for an account and for local mode."""
    served = served_elsewhere(session, target)
    if served:
        raise VerifyInputError(f"endpoint {target.endpoint_name} serves {served}; verify would replace it. Run it "
                               f"on a deployment that serves nothing yet (a fresh `-c env=dev`), or delete the "
                               f"endpoint and the record {target.serving_parameter} first")
    data_dir = prepare_tiny_dataset(_stsb_dir(options), work_dir / "data")
    run = VerifyRun.new(target.deployment)
    plan = make_plan(run, target, settings, local=target.local)
    if not confirmed(plan, yes=options.yes, say=output.say):
        output.say("o2v verify: not confirmed; nothing was created (pass --yes to skip the question)")
        return EXIT_BAD_INPUT
    leftovers = clean_up(session, target)
    if leftovers.removed:
        output.say(f"o2v verify: removed leftovers of an earlier run: {'; '.join(leftovers.removed)}")
    loop = LoopChecks(session, plan, data_dir, timeout=options.timeout, poll_seconds=options.poll_seconds,
                      progress=output.progress, best_epoch_artifact=target.local)
    with guarded_signals() as guard:
        try:
            for step in (loop.subscribe, loop.upload, loop.launch, loop.wait):
                if output.check(step()).status is Status.FAILED:
                    break
            else:
                results = {check.name: check for check in output.checks}
                for result in RESULT_CHECKS:
                    check = output.check(result(loop))
                    results[check.name] = check
                output.say("Points only a real account settles (docs/verification.md):")
                for point in POINTS:
                    output.check(point.run(loop, results))
            code = output.exit_code()
        except KeyboardInterrupt as error:
            guard.cleaning_up()
            output.say(f"o2v verify: interrupted by {how_interrupted(error)}; cleaning up ...")
            code = EXIT_INTERRUPTED
        finally:
            guard.cleaning_up()
            done = clean_up(session, target, keep_endpoint=options.keep)
            output.say(f"clean-up: removed {len(done.removed)}: {'; '.join(done.removed) or 'nothing'}")
            for kept in done.kept:
                output.say(f"clean-up: kept {kept}")
            for failed in done.failed:
                output.check(Check("clean-up", Status.FAILED, failed, "remove it by hand; a later "
                                   "`o2v verify` removes it too"))
    if code != EXIT_INTERRUPTED:
        output.say(output.verdict(target.local))
        code = output.exit_code()
    return code


def run_verify(settings: Settings, options: VerifyOptions, output: Output | None = None,
               clients: ClientFactory | None = None) -> int:
    """The whole run; ``clients``: the account's clients after the identity (tests), as in ``o2v preflight``."""
    output = output or Output()
    with tempfile.TemporaryDirectory(prefix="o2v-verify-") as temporary:
        work_dir = options.work_dir or Path(temporary)
        work_dir.mkdir(parents=True, exist_ok=True)
        if options.local:
            return _run_local(settings, options, output, work_dir)
        return _run_account(settings, options, output, work_dir, clients)


def _run_local(settings: Settings, options: VerifyOptions, output: Output, work_dir: Path) -> int:
    import boto3

    from training.verify.local import start_local_account

    region = options.region or "us-east-1"
    output.say("o2v verify --local: local mode (local_aws), no AWS account; every check runs as against an account")
    account, target = start_local_account(work_dir / "local", settings, region)
    try:
        return verify_target(boto3.session.Session(), target, settings, options, output, work_dir)
    finally:
        account.stop()
        output.say("o2v verify: every local process stopped.")


def _run_account(settings: Settings, options: VerifyOptions, output: Output, work_dir: Path,
                 clients: ClientFactory | None) -> int:
    from training.verify.account_input import account_target

    session, target = account_target(settings, options.region, output, clients)
    return verify_target(session, target, settings, options, output, work_dir)
