"""The queue names (the seed's) and which jobs go on which."""

from jobs.models import Job

IMMEDIATE_QUEUES = {Job.Type.SMS: "send-sms-queue", Job.Type.EMAIL: "send-email-queue"}
DELAYED_QUEUES = {
    Job.Type.SMS: "scheduled-sms-queue",
    Job.Type.EMAIL: "scheduled-email-queue",
}
# Queues that hold only delivery jobs (jobs.tasks.deliver), which our worker claims
# in bulk; the failure webhook is an ordinary RQ job on its own queue.
DELIVERY_QUEUES = [*IMMEDIATE_QUEUES.values(), *DELAYED_QUEUES.values()]
WEBHOOK_QUEUE = "my-queue"


def queue_name_for(job_type: str, delayed: bool) -> str:
    return (DELAYED_QUEUES if delayed else IMMEDIATE_QUEUES)[job_type]
