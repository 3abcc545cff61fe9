"""Serializers of the extract routes."""

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from licensing.models import Extract, ExtractFormat
from licensing.services.extracts import extract_progress


class StartExtractSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=ExtractFormat.choices)


class ExtractFileSerializer(serializers.Serializer):
    name = serializers.CharField()
    rows = serializers.IntegerField()
    bytes = serializers.IntegerField()
    sha256 = serializers.CharField()


class ExtractProgressSerializer(serializers.Serializer):
    rows_done = serializers.IntegerField()
    rows_estimated = serializers.IntegerField(allow_null=True)
    parts_done = serializers.IntegerField()
    parts_total = serializers.IntegerField()
    eta_seconds = serializers.IntegerField(
        allow_null=True, help_text="Estimated seconds left, from the rate so far."
    )


class ExtractSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    files = serializers.SerializerMethodField()

    class Meta:
        model = Extract
        fields = [
            "id",
            "license",
            "format",
            "state",
            "failure_reason",
            "as_of",
            "record_limit",
            "rows_delivered",
            "bytes_delivered",
            "progress",
            "files",
            "manifest",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(ExtractProgressSerializer)
    def get_progress(self, extract: Extract) -> dict[str, Any]:
        return ExtractProgressSerializer(extract_progress(extract)).data

    @extend_schema_field(ExtractFileSerializer(many=True))
    def get_files(self, extract: Extract) -> list[dict[str, Any]]:
        if not extract.manifest:
            return []
        return [dict(entry) for entry in extract.manifest.get("files", [])]
