"""The offline side of experiments: read the prediction log the service writes, join answers
with outcomes, and report each arm's results with intervals by bootstrap over users.

Reading follows the record contract of :mod:`service.experiments.records`.
"""

from offline.experiments.arms import ArmResult, Comparison, Difference
from offline.experiments.bootstrap import Estimate
from offline.experiments.join import Answer, JoinedLog, ShadowPair, join
from offline.experiments.prediction_log import (
    Outcome,
    Prediction,
    PredictionLogError,
    ReadCounts,
    read_folder,
    read_stream,
)
from offline.experiments.report import (
    ExperimentReport,
    ReportSettings,
    experiment_report,
    findings,
    folder_report,
    stream_report,
    table_lines,
)

__all__ = [
    "Answer",
    "ArmResult",
    "Comparison",
    "Difference",
    "Estimate",
    "ExperimentReport",
    "JoinedLog",
    "Outcome",
    "Prediction",
    "PredictionLogError",
    "ReadCounts",
    "ReportSettings",
    "ShadowPair",
    "experiment_report",
    "findings",
    "folder_report",
    "join",
    "read_folder",
    "read_stream",
    "stream_report",
    "table_lines",
]
