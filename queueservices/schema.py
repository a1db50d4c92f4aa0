"""How /api/schema and /api/docs present the API: paths as clients call them, the
operations grouped by tag (SPECTACULAR_SETTINGS["TAGS"]), the seed's two schedule
endpoints first."""

# Within a tag, these paths first, in this order; the rest alphabetically.
FIRST = ["/api/schedule-sms", "/api/schedule-email", "/api/schedule-batch"]


def operation_order(path: str) -> tuple[int, str]:
    return (FIRST.index(path) if path in FIRST else len(FIRST), path)


def preprocess_paths(endpoints):
    """Routes accept an optional trailing slash (`/?$`); show the form without it,
    as the seed's clients call them, in the order above."""
    shown = [
        (path.rstrip("/"), regex, method, view)
        for path, regex, method, view in endpoints
    ]
    return sorted(shown, key=lambda endpoint: operation_order(endpoint[0]))


# OpenAPI links: where a job id in an answer leads (schedule -> status ->
# reschedule -> cancel). Clients and tools (Swagger UI, schemathesis's stateful
# runs in tests/test_api_fuzz.py) follow them with the id the answer holds.
JOB_ID = "$response.body#/jobId"
JOB_LINKS = {
    "status": ("api_job_status_retrieve", "The job's status and attempts."),
    "reschedule": ("api_jobs_partial_update", "Give the job a new due time."),
    "cancel": ("api_jobs_destroy", "Cancel the job if it has not run."),
}
LINKS_FROM = {
    ("/api/schedule-sms", "post"): ["status", "reschedule", "cancel"],
    ("/api/schedule-email", "post"): ["status", "reschedule", "cancel"],
    ("/api/job-status/{job_id}", "get"): ["reschedule", "cancel"],
    ("/api/jobs/{job_id}", "get"): ["reschedule", "cancel"],
    ("/api/jobs/{job_id}", "patch"): ["status", "cancel"],
    ("/api/jobs/{job_id}", "delete"): ["status"],
}


def add_job_links(result, generator, request, public):
    """A drf-spectacular postprocessing hook: the links above on each 200 answer."""
    for (path, method), names in LINKS_FROM.items():
        answer = result["paths"][path][method]["responses"]["200"]
        answer["links"] = {
            name: {
                "operationId": JOB_LINKS[name][0],
                "parameters": {"job_id": JOB_ID},
                "description": JOB_LINKS[name][1],
            }
            for name in names
        }
    return result
