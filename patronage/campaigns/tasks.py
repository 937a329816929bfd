from django_tasks import task

from .webhooks import deliveries_send


@task()
def deliver_webhooks(delivery_ids: list[int]) -> None:
    deliveries_send(delivery_ids=delivery_ids)
