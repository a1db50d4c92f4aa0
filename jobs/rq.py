"""The RQ classes every process uses (selected in settings.RQ).

- DeliveryJob: JSON-serialized (no pickle anywhere) and retried through our
  precise scheduler, so retry backoff keeps millisecond precision instead of
  RQ's whole-second ScheduledJobRegistry.
- DeliveryWorker: no fork per job (callbacks are short HTTP waits; a fork costs
  more than the callback), Django DB connections recycled around each job.
"""

import time

from django.db import close_old_connections
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from rq.worker import SimpleWorker

from jobs.scheduler import schedule_job_id


class DeliveryJob(Job):
    def __init__(self, id=None, connection=None, serializer=None):
        super().__init__(id=id, connection=connection, serializer=JSONSerializer)

    def retry(self, queue, pipeline) -> None:
        delay = self.get_retry_interval()
        if not delay:
            return super().retry(queue, pipeline)
        self.retries_left = self.retries_left - 1
        self.set_status(JobStatus.SCHEDULED, pipeline=pipeline)
        self.save(pipeline=pipeline)
        schedule_job_id(pipeline, self.id, time.time() + delay)


class DeliveryWorker(SimpleWorker):
    def __init__(self, *args, **kwargs):
        # `manage.py rqworker` passes --serializer (pickle by default); ours is JSON.
        kwargs["serializer"] = JSONSerializer
        kwargs["job_class"] = DeliveryJob
        super().__init__(*args, **kwargs)

    def execute_job(self, job, queue):
        close_old_connections()
        try:
            return super().execute_job(job, queue)
        finally:
            close_old_connections()
