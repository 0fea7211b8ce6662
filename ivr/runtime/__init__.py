"""The composition root: builds the service and runs it under signals."""
