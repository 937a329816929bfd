from django_tasks import task

from .models import ImportJob
from .running import import_job_run


@task()
def run_import_job(job_id: int) -> None:
    import_job_run(job=ImportJob.objects.select_related("environment").get(pk=job_id))
