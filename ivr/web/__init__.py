"""The reports API, dashboard, metrics and detractor alerts (aiohttp).

An adapter like `agi.py` and `ami.py`: it turns HTTP into queries on a
`ivr.ports.ReportReader` and never imports `storage`; `ivr.service` hands it
the reader, the service's metrics and the alert sender.
"""

from __future__ import annotations

from ivr.web.alerts import DetractorAlerts
from ivr.web.app import WebServer, create_app
from ivr.web.metrics import FixedMetrics, LatencyHistogram

__all__ = ["DetractorAlerts", "FixedMetrics", "LatencyHistogram", "WebServer", "create_app"]
