import click
from flask import Blueprint, current_app

from booking.jobs.service import JOBS, intervals, run_job, statuses
from booking.jobs.service import interval_overrides as service_overrides

cli = Blueprint("jobs_cli", __name__, cli_group="jobs")
scheduler_cli = Blueprint("scheduler_cli", __name__, cli_group=None)


@cli.cli.command("run")
@click.argument("name", type=click.Choice(sorted(JOBS)))
def run(name: str) -> None:
    """Run one job now (it is skipped if another process holds its lease)."""
    click.echo(f"{name}: {run_job(name)}")


@cli.cli.command("list")
def list_jobs() -> None:
    """Each job's interval, last run and last error."""
    for name, seconds, row, _next in statuses(current_app.config["SCHEDULER_INTERVALS"]):
        last = row.last_finished_at.isoformat() if row and row.last_finished_at else "never"
        click.echo(
            f"{name:18} every {seconds:6d} s  last {last}  {row.last_error or '' if row else ''}"
        )


def interval_overrides(text: str) -> dict[str, int]:
    """ "mail=5,reminders=60" as {job: seconds}; unknown jobs and bad numbers are refused."""
    try:
        return service_overrides(text)
    except ValueError as error:
        raise click.UsageError(f"SCHEDULER_INTERVALS: cannot use {str(error)!r}") from None


@scheduler_cli.cli.command("scheduler")
def scheduler() -> None:
    """The scheduler process: runs every job on its interval until stopped (one per
    deployment is enough; a second one does no double work thanks to the leases)."""
    from datetime import UTC, datetime, timedelta

    from apscheduler.schedulers.blocking import BlockingScheduler

    app = current_app._get_current_object()
    sched = BlockingScheduler(
        timezone="UTC",
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
    )

    def runner(job_name: str):
        def run_in_app():
            with app.app_context():
                outcome = run_job(job_name)
                app.logger.info("job %s: %s", job_name, outcome)

        return run_in_app

    # Every job runs once shortly after start (catching up on downtime), then on its interval.
    first = datetime.now(UTC) + timedelta(seconds=5)
    interval_overrides(app.config["SCHEDULER_INTERVALS"])  # refused here, before starting
    seconds = intervals(app.config["SCHEDULER_INTERVALS"])
    for i, name in enumerate(JOBS):
        sched.add_job(
            runner(name),
            "interval",
            seconds=seconds[name],
            id=name,
            next_run_time=first + timedelta(seconds=2 * i),
        )
    click.echo(f"Scheduler started with {len(JOBS)} jobs. Ctrl+C stops it.")
    try:
        sched.start()
    except (KeyboardInterrupt, SystemExit):
        pass
