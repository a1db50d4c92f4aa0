from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0003_control"),
    ]

    operations = [
        migrations.CreateModel(
            name="PausedScope",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                ("campaign_id", models.CharField(blank=True, max_length=255)),
                ("workspace_id", models.CharField(blank=True, max_length=255)),
                ("paused_at", models.DateTimeField()),
                ("actor", models.CharField(max_length=150)),
            ],
            options={
                "ordering": ["-paused_at"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("campaign_id", "workspace_id"),
                        name="paused_scope_unique",
                    )
                ],
            },
        ),
    ]
