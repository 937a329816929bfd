"""The app's background tasks (the worker finds them here); each only calls a service."""

from django_tasks import task

from .generation import coupon_generation_run


@task()
def generate_coupons(generation_id: int) -> None:
    coupon_generation_run(generation_id=generation_id)
