# gunicorn settings for Caseload: `gunicorn -c config/gunicorn.conf.py "lti_app:create_app()"`
import multiprocessing
import os

bind = os.environ.get("CASELOAD_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("CASELOAD_WORKERS", multiprocessing.cpu_count() * 2))
threads = int(os.environ.get("CASELOAD_THREADS", 1))  # > 1: threaded workers (gthread), see README
timeout = 30
graceful_timeout = 20
accesslog = "-"  # request lines only: paths carry no names or note text (tokens are in query strings: see below)
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'  # %(U)s = path without the query string (no tokens)
forwarded_allow_ips = os.environ.get("CASELOAD_FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server):
    """Refuse to listen beyond this machine while the built-in development secret signs page tokens."""
    from lti_app.security import refuse_dev_secret_on
    from lti_app.settings import load_settings

    settings = load_settings()
    for address in server.cfg.bind:
        if not address.startswith(("unix:", "fd://")):
            refuse_dev_secret_on(address.rsplit(":", 1)[0] if ":" in address else address, settings)


def post_worker_init(worker):  # noqa: ARG001 - gunicorn hook signature
    from lti_app.runtime import tune_gc

    tune_gc()
