"""Output serializers of the operator's ingest routes (the import summaries, for the schema)."""

from rest_framework import serializers


class LineErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="1-based line number in the request body.")
    error = serializers.CharField()


class _SummarySerializer(serializers.Serializer):
    lines = serializers.IntegerField()
    error_count = serializers.IntegerField(help_text="Malformed lines, skipped.")
    errors = LineErrorSerializer(many=True, help_text="The first 1,000 malformed lines.")


class PostImportSummarySerializer(_SummarySerializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    skipped = serializers.IntegerField(help_text="Posts whose author is unknown.")
    versions_kept = serializers.IntegerField(help_text="Earlier texts of edited posts filed.")
    creators_created = serializers.IntegerField()
    creators_updated = serializers.IntegerField()
    creators_unchanged = serializers.IntegerField()
    signals_recorded = serializers.IntegerField(
        help_text="Ledger observations from user and tweet objects (protected, withheld)."
    )


class ComplianceImportSummarySerializer(_SummarySerializer):
    events = serializers.IntegerField()
    signals = serializers.IntegerField()
    recorded = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    applied = serializers.IntegerField(help_text="Creator and post rows whose state changed.")
