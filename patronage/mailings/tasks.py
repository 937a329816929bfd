from django_tasks import task

from .sending import mailing_send_run


@task()
def send_mailing(mailing_id: int) -> None:
    mailing_send_run(mailing_id=mailing_id)
