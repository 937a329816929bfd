"""The image gallery: only real web images under the size limit get in, stored through the storage API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from patronage.core.errors import ValidationFailed
from patronage.offers.models import GalleryImage
from patronage.offers.services import gallery_image_upload
from patronage.testing.offers import make_image, png_bytes

pytestmark = pytest.mark.django_db

ADD = "/admin/offers/galleryimage/add/"


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def upload(name: str, content: bytes, content_type: str = "image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=content_type)


def test_an_uploaded_png_is_stored_with_its_size_and_dimensions(media_root: Path) -> None:
    content = png_bytes(width=40, height=30)

    image = gallery_image_upload(file=upload("banner.png", content), title=" Spring banner ")

    assert (image.title, image.width, image.height, image.size) == ("Spring banner", 40, 30, len(content))
    assert (media_root / image.file.name).read_bytes() == content
    assert image.file.url.startswith("/media/gallery/")


def test_a_jpeg_called_png_is_stored_under_what_it_really_is() -> None:
    image = gallery_image_upload(file=upload("photo.png", png_bytes(fmt="JPEG")))

    assert image.file.name.endswith("photo.jpg")


def test_a_text_file_named_like_a_picture_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="not an image"):
        gallery_image_upload(file=upload("evil.png", b"<?php echo 1; ?>"))
    assert not GalleryImage.objects.exists()


def test_a_truncated_png_is_refused() -> None:
    content = png_bytes(width=64, height=64)

    with pytest.raises(ValidationFailed, match="not an image"):
        gallery_image_upload(file=upload("cut.png", content[: len(content) // 2]))


def test_an_image_browsers_do_not_show_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="upload a PNG, JPEG, GIF or WebP"):
        gallery_image_upload(file=upload("scan.tiff", png_bytes(fmt="TIFF"), "image/tiff"))


def test_an_image_over_the_limit_is_refused(settings: Any) -> None:
    content = png_bytes(width=200, height=200)
    settings.PATRONAGE_IMAGE_MAX_BYTES = len(content) - 1

    with pytest.raises(ValidationFailed, match="at most"):
        gallery_image_upload(file=upload("big.png", content))


def test_staff_upload_through_the_back_office_and_see_thumbnails(admin_client: Client) -> None:
    response = admin_client.post(ADD, {"file": upload("hero.png", png_bytes()), "title": "Hero"})
    assert response.status_code == 302
    image = GalleryImage.objects.get()

    listing = admin_client.get("/admin/offers/galleryimage/").content.decode()

    assert f'src="{image.file.url}"' in listing
    assert "Hero" in listing


def test_the_back_office_says_why_an_upload_is_refused(admin_client: Client, settings: Any) -> None:
    response = admin_client.post(ADD, {"file": upload("notes.png", b"just text"), "title": ""})

    assert response.status_code == 200
    assert "This file is not an image" in response.content.decode()
    assert not GalleryImage.objects.exists()


def test_the_factory_makes_a_real_image() -> None:
    image = make_image(width=12, height=9)

    assert (image.width, image.height) == (12, 9)
    assert image.file.read().startswith(b"\x89PNG")


# --- pixel dimensions ---------------------------------------------------------------------------------------


def test_an_image_of_huge_pixel_dimensions_is_refused_before_it_is_decoded() -> None:
    # given: a 12000 x 12000 PNG (a few hundred KiB, 432 MB once decoded)
    content = png_bytes(width=12000, height=12000)

    # when / then: refused with its size in pixels, nothing stored
    with pytest.raises(ValidationFailed, match="at most 6000 x 6000 pixels") as refused:
        gallery_image_upload(file=upload("poster.png", content))
    assert refused.value.details[0].pointer == "file"
    assert not GalleryImage.objects.exists()


def test_an_image_over_the_pixel_count_is_refused_whatever_its_sides(settings: Any) -> None:
    settings.PATRONAGE_IMAGE_MAX_PIXELS = 1_000_000

    with pytest.raises(ValidationFailed, match="1 megapixels"):
        gallery_image_upload(file=upload("wide.png", png_bytes(width=2000, height=600)))


def test_a_wide_image_gets_a_resized_copy_the_panel_and_the_app_are_served(media_root: Path) -> None:
    # given: a 3000 x 1500 JPEG
    content = png_bytes(width=3000, height=1500, fmt="JPEG")

    # when: it is uploaded
    image = gallery_image_upload(file=upload("hero.jpg", content, "image/jpeg"))

    # then: the original stays as it is; customers get a 1200 x 600 JPEG
    assert (image.width, image.height) == (3000, 1500)
    assert (media_root / image.file.name).read_bytes() == content
    assert (image.panel_width, image.panel_height) == (1200, 600)
    assert image.panel_url != image.file.url and image.panel_url.endswith(".jpg")
    with Image.open(media_root / image.display.name) as copy:
        assert (copy.format, copy.size) == ("JPEG", (1200, 600))


def test_a_narrow_image_is_served_as_it_is() -> None:
    image = gallery_image_upload(file=upload("small.png", png_bytes(width=800, height=400)))

    assert not image.display
    assert (image.panel_url, image.panel_width, image.panel_height) == (image.file.url, 800, 400)


def test_the_back_office_says_the_pixel_limit_on_the_field(admin_client: Client) -> None:
    response = admin_client.post(ADD, {"file": upload("poster.png", png_bytes(width=7000, height=100))})

    assert response.status_code == 200
    assert "The image is 7000 x 100 pixels; at most 6000 x 6000 pixels" in response.content.decode()
    assert not GalleryImage.objects.exists()
