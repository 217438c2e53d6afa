"""The model of what a customer asks is called Question (it was Request, a name every view shares
with the HTTP request). Renames only: the rows, their ids and every link to them are kept."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0005_import_jobs"),
    ]

    operations = [
        # Before the renames: SQLite rebuilds the table on each and would look for the old field.
        migrations.RemoveConstraint(model_name="commitment", name="commitment_one_per_request"),
        migrations.RenameModel(old_name="Request", new_name="Question"),
        migrations.AlterModelOptions(
            name="question",
            options={
                "ordering": ["-received_at", "-id"],
                "verbose_name": "question",
                "verbose_name_plural": "questions",
            },
        ),
        migrations.AlterField(
            model_name="question",
            name="contact",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="questions",
                to="crm.contact",
                verbose_name="contact",
            ),
        ),
        migrations.AlterField(
            model_name="question",
            name="job",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="questions", to="crm.job", verbose_name="job"
            ),
        ),
        migrations.AlterField(
            model_name="question",
            name="message",
            field=models.OneToOneField(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="question",
                to="crm.message",
                verbose_name="message",
            ),
        ),
        migrations.RenameField(model_name="commitment", old_name="request", new_name="question"),
        migrations.RenameField(model_name="checkin", old_name="request", new_name="question"),
        migrations.RenameIndex(
            model_name="question", new_name="question_open_due_idx", old_name="request_open_due_idx"
        ),
        migrations.RenameIndex(
            model_name="question", new_name="question_received_idx", old_name="request_received_idx"
        ),
        migrations.AddConstraint(
            model_name="commitment",
            constraint=models.UniqueConstraint(fields=("question",), name="commitment_one_per_question"),
        ),
    ]
