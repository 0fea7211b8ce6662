"""Adapters: AMI, FastAGI and HTTP translated to and from the core."""
