"""`decline_quick_path()`: how a statement sent in one round trip declines its transaction
(common.db.run_in_one_round_trip). PostgreSQL only: nothing else takes that path."""

from django.db import migrations

from common.db import QUICK_PATH_DECLINED

CREATE = f"""
CREATE OR REPLACE FUNCTION decline_quick_path() RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'The work needs the careful way' USING ERRCODE = '{QUICK_PATH_DECLINED}';
END $$
"""
DROP = "DROP FUNCTION IF EXISTS decline_quick_path()"


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = []

    operations = [migrations.RunPython(_on_postgresql(CREATE), _on_postgresql(DROP))]
