"""The long-running processes: the RQ worker, the rq-scheduler and the watchdog it
runs. They sit on top: they call the services and the broker, nothing calls them."""
