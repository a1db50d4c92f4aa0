from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0002_campaigns"),
    ]

    operations = [
        # Replaces job_campaign (its prefix): a campaign's jobs, newest first, for
        # GET /api/jobs?campaignId= and the campaign operations.
        migrations.RemoveIndex(model_name="job", name="job_campaign"),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                fields=["campaign_id", "-created_at", "-id"],
                name="job_campaign_created",
            ),
        ),
    ]
