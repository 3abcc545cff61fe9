import django.db.models.deletion
from django.db import migrations, models


def forget_shared_meters(apps, schema_editor):
    # The shared meters billed every license of a customer on each of its subscriptions. They
    # stay in Stripe; licenses get meters of their own the next time they report.
    apps.get_model("licensing", "StripeMeter").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("licensing", "0011_drop_manifest_signature"),
    ]

    operations = [
        migrations.RunPython(forget_shared_meters, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="stripemeter",
            name="meter",
            field=models.CharField(
                choices=[
                    ("records_delivered", "Records delivered"),
                    ("bytes_downloaded", "Bytes downloaded"),
                    ("api_requests", "API requests"),
                    ("extract_runs", "Extract runs"),
                ],
                max_length=32,
            ),
        ),
        migrations.AddField(
            model_name="stripemeter",
            name="license",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="stripe_meters",
                to="licensing.license",
            ),
        ),
        migrations.AddConstraint(
            model_name="stripemeter",
            constraint=models.UniqueConstraint(
                fields=("license", "meter"), name="stripe_meter_one_per_license"
            ),
        ),
    ]
