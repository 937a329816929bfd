from django_tasks import task

from .webhooks import deliveries_send


@task()
def deliver_webhooks(delivery_ids: list[int]) -> None:
    """Post these webhook deliveries; a failed one queues its own retry (``webhooks._finish``)."""
    deliveries_send(delivery_ids=delivery_ids)
