"""The pure core: survey flow, call tracking, policy, NPS. No IO, no clock."""
