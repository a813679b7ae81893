"""What the server does on its own: scheduled and event-driven control testing, and outgoing CloudEvents.

* ``cloudevents`` — CloudEvents 1.0 JSON, the HTTP binary and structured modes, the delivery signature;
* ``outbox`` — events written in the transaction of the change, delivered with backoff, every attempt kept;
* ``changes`` — what is announced: finding changes, expiring exceptions, new checkpoints;
* ``scheduler`` — cron-style schedules of assessments and walkthroughs, missed runs, the server's jobs;
* ``retest`` — after an ingest, the affected controls re-tested for the subjects it is about;
* ``config`` — the TOML file of schedules and endpoints; ``commands`` — the CLI.
"""
