# Drops three single-column indexes on marketplace_post that composite indexes already serve and
# that every imported post paid for (docs/PERFORMANCE.md "Import": about 1 s of PostgreSQL time
# per 200,000 posts, random inserts into b-trees that grow with the corpus):
# - marketplace_post_author_id_*: post_author_created (author_id, created_at) leads with
#   author_id, so it serves the join to the author, the cascade from Creator and the admin;
# - marketplace_post_lang_* and its varchar_pattern_ops twin marketplace_post_lang_*_like
#   (PostgreSQL only): languages are only filtered with `lang IN (...)`
#   (marketplace/consent/eligibility.py) or `lang = ...` (admin), which post_lang_created
#   (lang, created_at) serves; nothing filters lang with LIKE. docs/ELIGIBILITY.md already
#   listed it as redundant.
# The indexes the eligibility queries rely on (post_lang_created, post_author_created,
# post_hashtags_trgm, created_at, referenced_platform_id, platform_id) stay.
#
# Written by hand: Django's AlterField(db_index=False) on the foreign key would also drop and
# re-add the constraint, re-validating every post under a lock. The names are the ones Django
# gave the indexes in 0002 (deterministic), on SQLite and PostgreSQL alike.

import django.db.models.deletion
from django.db import migrations, models

DROP = [
    "DROP INDEX IF EXISTS marketplace_post_author_id_7212603c",
    "DROP INDEX IF EXISTS marketplace_post_lang_bb703bc2",
    "DROP INDEX IF EXISTS marketplace_post_lang_bb703bc2_like",
]
CREATE = [
    "CREATE INDEX IF NOT EXISTS marketplace_post_author_id_7212603c "
    "ON marketplace_post (author_id)",
    "CREATE INDEX IF NOT EXISTS marketplace_post_lang_bb703bc2 ON marketplace_post (lang)",
]
CREATE_ON_POSTGRESQL = [
    "CREATE INDEX IF NOT EXISTS marketplace_post_lang_bb703bc2_like "
    "ON marketplace_post (lang varchar_pattern_ops)",
]


def _drop(apps, schema_editor):
    for statement in DROP:
        schema_editor.execute(statement)


def _create(apps, schema_editor):
    postgresql = schema_editor.connection.vendor == "postgresql"
    for statement in CREATE + (CREATE_ON_POSTGRESQL if postgresql else []):
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("marketplace", "0004_eligibility_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="post",
                    name="author",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="posts",
                        to="marketplace.creator",
                    ),
                ),
                migrations.AlterField(
                    model_name="post",
                    name="lang",
                    field=models.CharField(blank=True, max_length=16),
                ),
            ],
            database_operations=[migrations.RunPython(_drop, _create)],
        ),
    ]
