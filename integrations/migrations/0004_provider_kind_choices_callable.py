# Provider.kind takes its choices from integrations.kinds at run time: the migration stores
# the function, so adding a kind never needs another migration.

from django.db import migrations, models

import integrations.kinds


class Migration(migrations.Migration):

    dependencies = [
        ("integrations", "0003_outbound_client"),
    ]

    operations = [
        migrations.AlterField(
            model_name="provider",
            name="kind",
            field=models.CharField(choices=integrations.kinds.kind_choices, max_length=20),
        ),
    ]
