"""The reports API, dashboard, metrics and detractor alerts (aiohttp).

An adapter like `ivr/adapters/fastagi/` and `ivr/adapters/ami/`: it turns HTTP into queries on a
`ivr.ports.ReportReader` and never imports `storage`; `ivr.runtime.service` hands it
the reader, the service's metrics and the alert sender.
"""

from __future__ import annotations

from ivr.adapters.web.alerts import DetractorAlerts
from ivr.adapters.web.app import WebServer, create_app
from ivr.adapters.web.metrics import FixedMetrics, LatencyHistogram

__all__ = ["DetractorAlerts", "FixedMetrics", "LatencyHistogram", "WebServer", "create_app"]
