"""Key the audit chain: events record the id of their HMAC key, the tip is signed.

Existing events keep their plain SHA-256 hashes and an empty key id (legacy): they
are verified the old way, never re-signed (that would rewrite history). The tip is
signed with the configured signing key, so the legacy prefix cannot later be grown
by rewriting keyed events as legacy ones.
"""

from django.db import migrations, models


def sign_tip(apps, schema_editor):
    from audit.checkpoints import Checkpoint, checkpoint_log
    from audit.keys import ChainKeys
    from audit.models import chain_head_mac

    head, _ = apps.get_model("audit", "AuditChainHead").objects.get_or_create(pk=1)
    keys = ChainKeys.from_settings()
    head.mac_key_id = keys.signing_id
    head.mac = chain_head_mac(keys, keys.signing_id, head.last_sequence, head.last_hash, "")
    head.save(update_fields=["mac_key_id", "mac"])
    if head.last_sequence:
        # The end of the legacy prefix, exported like any checkpoint.
        checkpoint_log(Checkpoint(head.last_sequence, head.last_hash))


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_chain_head")]
    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="key_id",
            field=models.CharField(blank=True, default="", max_length=32),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="key_proof",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="auditchainhead",
            name="last_key_id",
            field=models.CharField(blank=True, default="", max_length=32),
        ),
        migrations.AddField(
            model_name="auditchainhead",
            name="mac_key_id",
            field=models.CharField(blank=True, default="", max_length=32),
        ),
        migrations.AddField(
            model_name="auditchainhead",
            name="mac",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.RunPython(sign_tip, migrations.RunPython.noop),
    ]
