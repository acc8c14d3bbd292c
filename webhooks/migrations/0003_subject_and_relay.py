"""WebhookEvent: `subject_type` + `subject_id` replace the foreign key to payments.Charge
(existing links are copied over), and `enqueued_at` NULL marks an event the relay has yet
to hand to the task queue."""

from django.conf import settings
from django.db import migrations, models
from django.db.models import F

CHARGE = "payments.charge"


def charge_to_subject(apps, schema_editor):
    WebhookEvent = apps.get_model("webhooks", "WebhookEvent")
    (WebhookEvent.objects.using(schema_editor.connection.alias).filter(charge__isnull=False)
     .update(subject_type=CHARGE, subject_id=F("charge_id")))


def subject_to_charge(apps, schema_editor):
    WebhookEvent = apps.get_model("webhooks", "WebhookEvent")
    Charge = apps.get_model("payments", "Charge")
    events = WebhookEvent.objects.using(schema_editor.connection.alias).filter(subject_type=CHARGE)
    # Only subjects that still exist: the foreign key would refuse the others.
    (events.filter(subject_id__in=Charge.objects.values("pk"))
     .update(charge_id=F("subject_id")))


class Migration(migrations.Migration):

    dependencies = [
        ('integrations', '0003_outbound_client'),
        ('payments', '0002_charge_completion_attempts_charge_request_key_and_more'),
        ('webhooks', '0002_leaner_inserts'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='webhookevent',
            name='subject_id',
            field=models.CharField(blank=True, default='', help_text='Its primary key.', max_length=255),
        ),
        migrations.AddField(
            model_name='webhookevent',
            name='subject_type',
            field=models.CharField(blank=True, default='', help_text='Model label of what the event updated, e.g. "payments.charge".', max_length=100),
        ),
        migrations.RunPython(charge_to_subject, subject_to_charge),
        migrations.RemoveIndex(
            model_name='webhookevent',
            name='webhookevent_charge',
        ),
        migrations.RemoveField(
            model_name='webhookevent',
            name='charge',
        ),
        migrations.AlterField(
            model_name='webhookevent',
            name='enqueued_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name='webhookevent',
            index=models.Index(condition=models.Q(('subject_id', ''), _negated=True), fields=['subject_type', 'subject_id'], name='webhookevent_subject'),
        ),
        migrations.AddIndex(
            model_name='webhookevent',
            index=models.Index(condition=models.Q(('enqueued_at__isnull', True), ('status', 'received')), fields=['id'], name='webhookevent_unrelayed'),
        ),
    ]
