from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("offers", "0002_offer_name_assignment_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="galleryimage",
            name="display",
            field=models.ImageField(blank=True, upload_to="gallery/display/%Y/%m/"),
        ),
        migrations.AddField(
            model_name="galleryimage",
            name="display_height",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name="galleryimage",
            name="display_width",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
    ]
