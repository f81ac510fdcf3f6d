"""The demo's steps in order: data, local services and deployment, attempt 1, watch, evaluate, report.

Each step's work lives in its own module of this package; this one only sequences them and owns
what must be stopped at the end (the services, the event pump, the ``o2v embed`` example).
"""

from __future__ import annotations

import contextlib
import os
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from o2v_core.events import MODEL_PROMOTED, PROMOTION_SKIPPED, RETRAINING_EXHAUSTED, TRAINING_FAILED
from o2v_core.naming import TAG_BEST_EPOCH_ARTIFACT, job_prefix
from o2v_core.settings import Settings

from local_aws import procs
from local_aws.deployment import LocalNames
from local_aws.events.pump import EventPump
from local_aws.services import LocalServices
from training.demo.console import Console, new_run_dir
from training.demo.data import DataChoice, find_data, prepare_data, use_prepared
from training.demo.evaluation import EmbedExample, evaluate_served
from training.demo.interruption import guarded_signals, how_interrupted, write_interrupted_report
from training.demo.local_account import LocalAccount
from training.demo.options import DATASET_NAME, LINEAGE, SIZES, DemoError, DemoOptions
from training.demo.recipe import OVERFIT_LAYER, overfit_prone_hyperparameters
from training.demo.report import RunSummary, write_report
from training.demo.stack_outputs import load_settings, stack_outputs
from training.demo.summary import attempts, endpoint_status, print_summary, served_record
from training.demo.watcher import Watcher
from training.launcher.launch import plan_launch, submit

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient


class Demo:
    def __init__(self, options: DemoOptions, console: Console | None = None) -> None:
        if options.size not in SIZES:
            raise DemoError(f"--size {options.size!r}: allowed {', '.join(SIZES)}")
        self.options = options
        self.size = SIZES[options.size]
        self.console = console or Console()
        self.account: LocalAccount | None = None
        self.services: LocalServices | None = None
        self.pump: EventPump | None = None
        self.run_dir: Path | None = None
        self.data_choice: DataChoice | None = None
        self._example: EmbedExample | None = None
        self._stopped = False
        self.stage = "start-up (reading cdk.json)"  # where an interruption finds the run
        self.started = time.monotonic()

    # -- lifecycle

    def run(self) -> int:
        options = self.options
        settings = load_settings(options.env_name)
        deployment = settings.deployment
        job_prefix(deployment)
        names = LocalNames(deployment)
        run_dir = self.run_dir = new_run_dir(options.runs_dir)
        started_at = datetime.now().isoformat(timespec="seconds")
        console = self.console
        console.plain(f"o2v demo: local mode, no AWS account. Run directory: {run_dir}")
        console.plain(f"          size {self.size.name}: {self.size.description}; settings: cdk.json "
                      f"environment {settings.env_name!r} (deployment {deployment!r})")

        # 1. data
        self.stage = "1. data (o2v prepare)"
        data_text = self._prepare(run_dir)
        console.line("data", data_text)

        # 2. services and what the stacks would create
        self.stage = "2. starting the local services"
        self.account = LocalAccount(run_dir, options.region)
        self.services = self.account.services
        watcher = Watcher(console, names, deployment, options.verbose)
        endpoints = self.account.start(settings, names, minute_seconds=options.minute_seconds,
                                       on_delivery=watcher.on_delivery, on_handler_log=watcher.on_handler_log)
        console.line("services", f"moto server {endpoints.moto} (S3, EventBridge, SQS, CloudWatch, Logs, SNS, SSM, "
                                 f"IAM, STS); local SageMaker API {endpoints.sagemaker}")
        session = boto3.session.Session()
        sqs, events = session.client("sqs"), session.client("events")
        sagemaker, logs = session.client("sagemaker"), session.client("logs")
        assert self.account.deployment is not None and self.account.pump is not None
        local = self.account.deployment
        self.pump = self.account.pump
        watcher.setup(sqs, events)
        self.pump.start()
        rule_text = ", ".join(f"{route.spec.rule_id} ({route.spec.bus})" for route in self.pump.routes)
        console.line("rules", f"{rule_text} -> {len(self.pump.functions)} Lambda handlers; the metric-line judge "
                              "gets each #quality_metric line from the local Logs' subscription delivery; the "
                              f"safety-net monitor runs every {options.minute_seconds * 10:g} s (rate(10 minutes) "
                              "in the cloud)")

        # 3. data in S3, attempt 1: o2v launch's launcher, given the stacks' outputs
        self.stage = "3. upload and attempt 1"
        hyperparameters = self._launch_attempt_1(session, settings, names, run_dir, local.training_role_arn)

        # 4. watch until the loop settles
        self.stage = "4. watching the retraining loop"
        self._watch(watcher, sagemaker, sqs, logs, names)

        # 5. evaluate the served model, report
        self.stage = "5. evaluating the served model"
        self._example = EmbedExample(run_dir, options.region)
        self._example.start(names.endpoint, self.services.environment())
        summary = self._summarize(settings, names, watcher, sagemaker, logs, run_dir, started_at, data_text,
                                  int(hyperparameters["enc_dim"]))
        paths = write_report(summary, run_dir)
        self.stage = "after the report"
        print_summary(console, summary, paths)
        self._example.show(console, keep_endpoint=options.keep_endpoint,
                           runtime_url=self.services.environment({})["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"])
        if summary.outcome != "ok":
            return 1
        if options.keep_endpoint:
            self.stage = "serving (--keep-endpoint, after the report)"
            self._serve_until_interrupted(names, run_dir)
        return 0

    def _prepare(self, run_dir: Path) -> str:
        """Find and prepare the data into ``run_dir/data``; returns the line that describes it."""
        options = self.options
        choice = self.data_choice = find_data(options, self.console)
        train_rows = options.train_rows if options.train_rows is not None else self.size.train_rows
        if choice.prepared:
            if options.train_rows is not None:
                raise DemoError("--train-rows applies to raw STS-B; sample a prepared dataset with o2v prepare")
            manifest = use_prepared(choice, run_dir / "data")
        else:
            manifest = prepare_data(choice.directory, run_dir / "data", train_rows)
        counts = {name: split["records"] for name, split in manifest["splits"].items()}
        return (f"{choice.description}: train {counts.get('train')}, validation {counts.get('validation')}, "
                f"test {counts.get('test')} pairs; vocabulary {manifest['vocab_size']}")

    def _launch_attempt_1(self, session: Any, settings: Settings, names: LocalNames, run_dir: Path,
                          training_role_arn: str) -> dict[str, Any]:
        from training.data.upload import upload_dataset

        upload_dataset(session.client("s3"), run_dir / "data", names.dataset_bucket, DATASET_NAME)
        plan = plan_launch(
            session, deployment=settings.deployment, lineage=LINEAGE, dataset=DATASET_NAME,
            layers=[(OVERFIT_LAYER, overfit_prone_hyperparameters(self.size, self.options.epochs))],
            volume_size_gb=settings.training.volume_size_gb,
            max_runtime_seconds=settings.training.max_runtime_seconds,
            stack=stack_outputs(names, settings, training_role_arn),
            # The local trainer saves the best epoch's weights (the promoter reads this tag).
            tags={TAG_BEST_EPOCH_ARTIFACT: "true"},
        )
        submit(session, plan)
        hyperparameters = dict(plan.hyperparameters)
        self.console.line("launch", f"attempt 1 {plan.job_name} (o2v launch's launcher, SageMaker SDK): dropout "
                                    f"{hyperparameters['dropout']}, {hyperparameters['enc0_network']} enc_dim "
                                    f"{hyperparameters['enc_dim']}, lr {hyperparameters['learning_rate']}, up to "
                                    f"{hyperparameters['epochs']} epochs (prone to overfit)")
        return hyperparameters

    def _watch(self, watcher: Watcher, sagemaker: SageMakerClient, sqs: Any, logs: Any, names: LocalNames) -> None:
        assert self.pump is not None
        deadline = time.monotonic() + self.options.timeout
        settled_checks = 0
        while True:
            watcher.drain(sqs)
            watcher.tail_logs(logs)
            watcher.watch_endpoint(sagemaker)
            if self._settled(sagemaker, names, watcher):
                settled_checks += 1
                if settled_checks >= 3:
                    return
            else:
                settled_checks = 0
            if time.monotonic() > deadline:
                raise DemoError(f"the loop did not settle within {self.options.timeout:.0f} s (--timeout); "
                                f"see {self.run_dir}")
            time.sleep(0.25)

    def _settled(self, sagemaker: SageMakerClient, names: LocalNames, watcher: Watcher) -> bool:
        """Nothing is running, queued or deploying, and the lineage reached an end."""
        assert self.pump is not None
        jobs = sagemaker.list_training_jobs(NameContains=LINEAGE, MaxResults=100)["TrainingJobSummaries"]
        if not jobs or any(job["TrainingJobStatus"] in ("InProgress", "Stopping") for job in jobs):
            return False
        kinds = {event.get("detail-type") for event in watcher.project_events}
        ended = kinds & {MODEL_PROMOTED, PROMOTION_SKIPPED, RETRAINING_EXHAUSTED, TRAINING_FAILED}
        if not ended and not watcher.dead_letters:
            return False
        with contextlib.suppress(sagemaker.exceptions.ClientError):
            status = sagemaker.describe_endpoint(EndpointName=names.endpoint)["EndpointStatus"]
            if status in ("Creating", "Updating", "SystemUpdating", "RollingBack"):
                return False
        return self.pump.idle()

    # -- results

    def _summarize(self, settings: Settings, names: LocalNames, watcher: Watcher, sagemaker: SageMakerClient,
                   logs: Any, run_dir: Path, started_at: str, data_text: str, enc_dim: int) -> RunSummary:
        assert self.pump is not None and self.services is not None
        found = attempts(sagemaker, logs, watcher, run_dir)
        promoted_job, promoted_value = served_record(names.serving_parameter)
        status = endpoint_status(sagemaker, names.endpoint)
        spearman: float | None = None
        embedding_dim: int | None = None
        pairs = 0
        outcome = "ok"
        if promoted_job and status == "InService":
            assert self.data_choice is not None
            evaluation = evaluate_served(run_dir, self.data_choice, names.endpoint, self.console, self.size.test_rows)
            if evaluation is None:
                self.console.line("eval", "no regression test split to correlate with; skipped the Spearman score")
            else:
                spearman, embedding_dim, pairs = evaluation
                self.console.line("eval", f"test Spearman {spearman:.3f} over {pairs} pairs (cosine of the in0 "
                                          f"embeddings from InvokeEndpoint {names.endpoint}, {embedding_dim} values "
                                          "each)")
        elif not promoted_job:
            outcome = "no model was promoted (see the events above and the report)"
        else:
            outcome = f"endpoint {names.endpoint} is {status}, not InService"
        if watcher.dead_letters:
            outcome = f"{len(watcher.dead_letters)} event(s) ended in the dead-letter queue"
        deliveries = []
        start = self.pump.deliveries()[0].started if self.pump.deliveries() else time.time()
        for delivery in self.pump.deliveries():
            item = delivery.as_dict()
            item["offset"] = delivery.started - start
            deliveries.append(item)
        assert self.services.endpoints is not None
        return RunSummary(
            run_dir=str(run_dir), started_at=started_at, wall_seconds=time.monotonic() - self.console.started,
            environment=settings.env_name, deployment=settings.deployment, data=data_text,
            endpoint_name=names.endpoint, attempts=found, promoted_job=promoted_job,
            promoted_value=promoted_value, endpoint_status=status, enc_dim=enc_dim,
            embedding_dim=embedding_dim, spearman=spearman, test_pairs=pairs, deliveries=deliveries,
            dead_letters=watcher.dead_letters, notifications=watcher.notifications, outcome=outcome,
            services={"moto": self.services.endpoints.moto, "sagemaker": self.services.endpoints.sagemaker},
            process_groups=self.process_groups(),
        )

    def _serve_until_interrupted(self, names: LocalNames, run_dir: Path) -> None:
        assert self.services is not None
        ready = {"endpoint": names.endpoint, "serving_parameter": names.serving_parameter,
                 "environment": self.services.environment({}),
                 "process_groups": self.process_groups(), "pid": os.getpid()}
        procs.write_ready_file(run_dir / "serving.json", ready)
        self.console.line("serving", f"endpoint {names.endpoint} stays up until Ctrl-C "
                                     f"(connection details in {run_dir / 'serving.json'})")
        while True:
            time.sleep(3600)

    # -- cleanup

    def process_groups(self) -> list[int]:
        groups = list(self.services.process_groups()) if self.services is not None else []
        if self.pump is not None:
            groups += self.pump.process_groups()
        return groups

    def stop(self) -> list[int]:
        """Stop the pump's workers and the services; returns any process group still alive."""
        if self._stopped:
            return []
        self._stopped = True
        if self._example is not None:
            self._example.stop()
        groups = self.process_groups()
        if self.pump is not None:
            self.pump.stop()
        if self.services is not None:
            self.services.stop()
        return [group for group in groups if procs.group_alive(group)]



def run_demo(options: DemoOptions, demo: Demo | None = None) -> int:
    """Run the demo; stop every local process on return, on error, on Ctrl-C and on SIGTERM/SIGHUP.

    A signal during the run stops it (exit 130) and leaves a partial report; one during the
    clean-up is noted and the clean-up finishes (see :mod:`training.demo.interruption`)."""
    demo = demo or Demo(options)
    with guarded_signals() as guard:
        try:
            code = demo.run()
            guard.cleaning_up()
        except KeyboardInterrupt as error:
            guard.cleaning_up()
            how = how_interrupted(error)
            demo.console.plain(f"\no2v demo: interrupted by {how} during {demo.stage}; stopping the local "
                               "services ...")
            code = 130
            if demo.run_dir is not None:
                report = write_interrupted_report(demo.run_dir, how=how, stage=demo.stage, started=demo.started)
                if report is not None:
                    demo.console.plain(f"o2v demo: partial report (interrupted): {report}")
        finally:
            guard.cleaning_up()
            left = demo.stop()
            if guard.noted:
                demo.console.plain(f"o2v demo: {', '.join(guard.noted)} during the clean-up: finished it first")
            if left:
                demo.console.plain(f"o2v demo: process group(s) {left} did not stop")
            else:
                demo.console.plain("o2v demo: every local process stopped.")
    return code
