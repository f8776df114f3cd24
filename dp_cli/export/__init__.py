"""`dp export`: write a person dataset, plus generated records, in a TBPS format."""

from dp_cli.export.exporter import ExportResult, export_dataset
from dp_cli.export.generated import GeneratedRecords, load_generated

__all__ = ["ExportResult", "GeneratedRecords", "export_dataset", "load_generated"]
